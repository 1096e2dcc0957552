"""``verify`` streams: what it holds at once does not grow with the number of entries it checks.

The scan of a million-entry cache must fit in the memory of a small CI machine; it keeps counts
and the first ``FINDINGS_LISTED`` problems, never one object per entry. Memory is measured
in-process with ``tracemalloc`` (allocations by Python code, exactly, no timing) on two caches ten
times apart in size, each entry as pip spreads them: one metadata file five directories deep, and
its ``.body``."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from pathlib import Path

import msgpack
import pytest

from pip_cache_guard import render, verify
from pip_cache_guard.locate import CacheLocation

SMALL, LARGE = 1_000, 10_000
# What may grow from SMALL to LARGE entries: the largest directory listing, the walk's stack, a
# longer path. An object kept per entry (a path, a Finding, even an int) costs more at LARGE.
ALLOWED_GROWTH = 64 * 1024

METADATA = b"cc=4," + msgpack.dumps(
    {
        "response": {
            "body": b"",
            "headers": {"Content-Length": "0", "Date": "Sat, 01 Nov 2025 10:00:00 GMT"},
            "status": 200,
            "version": 11,
            "reason": "OK",
            "decode_content": False,
        },
        "vary": {},
    },
    use_bin_type=True,
)


def write_cache(root: Path, count: int) -> CacheLocation:
    """``count`` valid entries, four to a directory. Their files are hard links to one metadata
    file and one body (three times faster to make; verify ties names to their directory only)."""
    http = root / "http-v2"
    http.mkdir(parents=True)
    metadata, body = root / "metadata", root / "body"
    metadata.write_bytes(METADATA)
    body.write_bytes(b"")
    for number in range(count):
        leaf = f"{number // 4:05x}"
        name = leaf + hashlib.sha224(str(number).encode()).hexdigest()[5:]
        directory = os.path.join(http, *leaf)
        if number % 4 == 0:
            os.makedirs(directory)
        os.link(metadata, os.path.join(directory, name))
        os.link(body, os.path.join(directory, name + ".body"))
    return CacheLocation(str(root), "test", False)


def peak_while_verifying(location: CacheLocation) -> tuple[int, verify.Scan]:
    # msgpack interns the keys it decodes. Freed, they leave dead slots in Python's dict of interned
    # strings, which is rebuilt (~1 MB, a constant) every few thousand entries: keep one decoded
    # document alive so that its keys stay interned and the peak shows verify's own memory.
    anchor = msgpack.loads(METADATA[5:])
    tracemalloc.start()
    try:
        scan = verify.verify(location)
        return tracemalloc.get_traced_memory()[1], scan
    finally:
        tracemalloc.stop()
        del anchor


def test_memory_does_not_grow_with_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verify, "PARALLEL_SAMPLE_THRESHOLD", 10**9)  # all in this process
    small, large = write_cache(tmp_path / "small", SMALL), write_cache(tmp_path / "large", LARGE)
    peak_small, scan_small = peak_while_verifying(small)
    peak_large, scan_large = peak_while_verifying(large)
    assert (scan_small.ok_entries, scan_large.ok_entries) == (SMALL, LARGE)
    assert scan_large.problems == [] and scan_large.errors == []
    assert peak_large - peak_small <= ALLOWED_GROWTH, (peak_small, peak_large)


@pytest.mark.parametrize("processes", [1, 2])
def test_findings_beyond_the_listed_are_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, processes: int
) -> None:
    """A cache of many damaged entries: the first few are listed, all are counted and fixed."""
    monkeypatch.setattr(verify, "FINDINGS_LISTED", 3)
    monkeypatch.setattr(render, "FINDINGS_SHOWN", 2)
    # two processes: every cache is worth a second one (a forked child sees these settings)
    monkeypatch.setattr(verify, "PARALLEL_SAMPLE_THRESHOLD", 0 if processes == 2 else 10**9)
    location = write_cache(tmp_path, 40)
    damaged = sorted(tmp_path.glob("http-v2/*/*/*/*/*/*[!y]"))[::5]  # metadata, 8 of them
    for path in damaged:
        path.unlink()  # a link to the one metadata file: replace it
        path.write_bytes(b"garbage")

    found = verify.verify(location)
    assert (found.problems_found, len(found.problems), found.remaining_found) == (8, 3, 8)
    assert dict(found.kinds) == {"corrupt": 8} and found.ok_entries == 32
    document = render.verify_json(found)
    assert (len(document["problems"]), document["problems_found"], document["remaining"]) == (
        3,
        8,
        8,
    )
    text = render.verify_text(found)
    assert "damaged: 8 (8 corrupt)" in text and "and 6 more (--json lists the first 3)" in text

    fixed = verify.verify(location, fix=True)
    assert dict(fixed.actions) == {"deleted": 8} and fixed.remaining_found == 0
    assert fixed.bytes_freed == 8 * len(b"garbage") and len(fixed.problems) == 3
    assert not any(path.exists() for path in damaged)
    assert "fixed: 8 deleted" in render.verify_text(fixed)
