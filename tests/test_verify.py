"""``verify.verify`` on caches built by hand from genuine entries, one finding kind at a time.

Metadata is written by CacheControl's real ``Serializer`` (the standalone 0.14 the guard depends on,
the same code pip 26.3 vendors) from a real ``requests`` request and ``urllib3`` response, then
placed where pip puts it: ``http-v2/h0/h1/h2/h3/h4/h`` plus ``h.body``. Legacy ``http/`` entries are
written by the installed pip's own ``SafeFileCache`` with the body inside, as pip up to 23.2 did.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import multiprocessing
import os
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import pytest
import requests
import urllib3
from cachecontrol.serialize import Serializer

from pip_cache_guard import entries, render, verify
from pip_cache_guard.diagnose import standalone_reader
from pip_cache_guard.locate import CacheLocation
from pip_cache_guard.verify import TMP_GRACE_SECONDS, CacheMissing, Scan

BASE = "https://files.example/packages/"
NOW = 1_900_000_000.0  # a fixed "now" for tmp ages


def body_of(size: int, seed: int = 0) -> bytes:
    return bytes((seed + i * 7) % 251 for i in range(size))


def genuine_metadata(
    url: str,
    body: bytes,
    *,
    separate_body: bool = True,
    headers: dict[str, str] | None = None,
    request_headers: dict[str, str] | None = None,
) -> bytes:
    """What CacheControl's serializer writes for a 200 response to GET ``url``."""
    response_headers = {
        "Content-Type": "application/octet-stream",
        "Content-Length": str(len(body)),
        "ETag": '"0123abcd"',
        "Cache-Control": "max-age=365000000, immutable, public",
    }
    response_headers.update(headers or {})
    request = requests.Request("GET", url, headers=request_headers or {}).prepare()
    response = urllib3.HTTPResponse(
        body=io.BytesIO(body),
        headers=response_headers,
        status=200,
        version=11,
        reason="OK",
        preload_content=False,
        decode_content=False,
    )
    return bytes(Serializer().dumps(request, response, b"" if separate_body else body))


class Cache:
    """A pip cache directory under construction."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.http = root / "http-v2"
        self.legacy = root / "http"
        self.wheels = root / "wheels"
        root.mkdir(parents=True, exist_ok=True)

    @property
    def location(self) -> CacheLocation:
        return CacheLocation(str(self.root), "test", False)

    def add(self, name: str, size: int = 2000, **kwargs: Any) -> Path:
        """A genuine http-v2 entry for ``BASE + name``; returns its metadata path."""
        url = BASE + name
        body = body_of(size, len(name))
        path = Path(entries.entry_path(str(self.http), url))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(genuine_metadata(url, body, **kwargs))
        Path(entries.body_path(str(path))).write_bytes(body)
        return path

    def add_legacy(self, name: str, size: int = 2000) -> Path:
        """A legacy entry written by pip's own SafeFileCache (body inside the metadata)."""
        from pip._internal.network.cache import SafeFileCache

        url = BASE + name
        SafeFileCache(str(self.legacy)).set(
            url, genuine_metadata(url, body_of(size), separate_body=False)
        )
        return Path(entries.entry_path(str(self.legacy), url))

    def add_wheel(self, name: str = "demo-1.0-py3-none-any.whl", data: bytes | None = None) -> Path:
        directory = self.wheels / "ab" / "cd" / "ef" / ("12" * 28)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / name
        if data is None:
            with zipfile.ZipFile(path, "w") as archive:
                archive.writestr("demo/__init__.py", "x = 1\n")
                archive.writestr("demo-1.0.dist-info/METADATA", "Name: demo\nVersion: 1.0\n")
                archive.writestr("demo-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\n")
                archive.writestr("demo-1.0.dist-info/RECORD", "")
        else:
            path.write_bytes(data)
        (directory / "origin.json").write_text("{}")
        return path

    def scan(self, fix: bool = False, **kwargs: Any) -> Scan:
        return verify.verify(self.location, fix=fix, now=kwargs.pop("now", NOW), **kwargs)


def files_under(root: Path) -> dict[str, bytes | str]:
    """Every file (content) and link (target) below ``root``, links not followed."""
    found: dict[str, bytes | str] = {}
    for directory, subdirs, names in os.walk(root):
        for name in [*subdirs, *names]:
            path = os.path.join(directory, name)
            if os.path.islink(path):
                found[path] = os.readlink(path)
            elif os.path.isfile(path):
                with open(path, "rb") as stream:
                    found[path] = stream.read()
    return found


def kinds(scan: Scan) -> dict[str, str]:
    return {finding.path: finding.kind for finding in scan.problems}


@pytest.fixture
def built(tmp_path: Path) -> Cache:
    """Eight good http-v2 entries of small to medium size, one good cached wheel."""
    cache = Cache(tmp_path / "pip")
    for number, size in enumerate([0, 1, 300, 2000, 15_000, 60_000, 250_000, 1200]):
        cache.add(f"good-{number}.whl", size)
    cache.add_wheel()
    return cache


# -- a clean cache -------------------------------------------------------------------------------


def test_clean_cache_has_no_findings(built: Cache) -> None:
    scan = built.scan()
    assert scan.problems == [] and scan.unrecognised == [] and scan.errors == []
    assert scan.entries == scan.ok_entries == 8
    assert scan.wheels == 1
    assert scan.legacy is None
    assert scan.bytes_total == sum(len(data) for data in files_under(built.root).values())
    assert scan.remaining == [] and scan.bytes_freed == 0 and scan.fixed is False


def test_progress_is_advanced_once_per_entry_and_wheel(built: Cache) -> None:
    calls: list[int] = []
    built.scan(progress=calls.append)
    assert calls == [1] * 9


def test_missing_cache_directory_raises_cache_missing(tmp_path: Path) -> None:
    with pytest.raises(CacheMissing, match="no cache directory"):
        verify.verify(CacheLocation(str(tmp_path / "nope"), "test", False))
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(CacheMissing):
        verify.verify(CacheLocation(str(a_file), "test", False))


def test_an_empty_cache_directory_is_clean(tmp_path: Path) -> None:
    scan = Cache(tmp_path / "empty").scan()
    assert (scan.entries, scan.wheels, scan.problems, scan.errors) == (0, 0, [], [])


def test_a_pip_cache_that_holds_only_selfcheck_is_clean(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "pip")
    (cache.root / "selfcheck").mkdir()
    (cache.root / "selfcheck" / "abc.json").write_text("{}")

    scan = cache.scan()

    assert (scan.entries, scan.wheels, scan.problems, scan.errors) == (0, 0, [], [])


@pytest.mark.parametrize(
    ("target", "pointer"),
    [
        ("home/.cache", "home/.cache/pip"),
        ("tmp", None),
    ],
)
def test_a_directory_that_holds_no_pip_cache_is_said_to_be_one(
    tmp_path: Path, target: str, pointer: str | None
) -> None:
    Cache(tmp_path / "home" / ".cache" / "pip").add("good.whl")
    (tmp_path / "tmp" / "build-xyz").mkdir(parents=True)
    (tmp_path / "tmp" / "notes.txt").write_text("hello")
    directory = tmp_path / target

    with pytest.raises(CacheMissing) as raised:
        verify.verify(CacheLocation(str(directory), "--cache-dir", False))

    message = str(raised.value)
    assert message.startswith(f"{directory} holds no pip cache")
    assert message.endswith(f"; {tmp_path / pointer} is one" if pointer else "directories only)")


def test_the_http_directory_the_summary_names_is_itself_a_cache_and_checked(
    tmp_path: Path,
) -> None:
    """``…/pip/http-v2`` (what the guard's summary calls "cache:") is a CacheControl directory."""
    cache = Cache(tmp_path / "pip")
    cache.add("good.whl")
    cache.add("bad.whl").write_bytes(b"")

    scan = verify.verify(CacheLocation(str(cache.http), "--cache-dir", False), now=NOW)

    assert (scan.entries, scan.ok_entries, [f.kind for f in scan.problems]) == (2, 1, ["corrupt"])


# -- metadata damage: the hook's own diagnosis ---------------------------------------------------


def _packed(document: Any) -> bytes:
    return b"cc=4," + msgpack.dumps(document, use_bin_type=True)


METADATA_DAMAGE: dict[str, tuple[Any, str]] = {
    "empty": (lambda data: b"", "corrupt"),
    "garbage": (lambda data: bytes(range(200, 256)) * 4, "corrupt"),
    "zero-filled": (lambda data: b"\0" * len(data), "corrupt"),
    "truncated": (lambda data: data[:40], "corrupt"),
    "prefix-only": (lambda data: b"cc=4", "corrupt"),
    "bad-msgpack": (lambda data: b"cc=4," + b"\xc1" * 9, "corrupt"),
    "cc=2": (lambda data: b"cc=2," + data[5:], "stale-format"),
    "cc=9": (lambda data: b"cc=9," + data[5:], "stale-format"),
    "list": (lambda data: _packed(["not", "a", "dict"]), "corrupt"),
    "no-response": (lambda data: _packed({"vary": {}}), "corrupt"),
}


@pytest.mark.parametrize("damage", sorted(METADATA_DAMAGE))
def test_metadata_damage_is_found_with_the_hooks_kind(built: Cache, damage: str) -> None:
    mutate, kind = METADATA_DAMAGE[damage]
    victim = built.add("victim.whl", 5000)
    victim.write_bytes(mutate(victim.read_bytes()))
    metadata_size = victim.stat().st_size

    scan = built.scan()

    assert kinds(scan) == {str(victim): kind}
    (finding,) = scan.problems
    assert finding.action == "found"
    assert finding.bytes == metadata_size + 5000  # metadata and its body
    assert scan.entries == 9 and scan.ok_entries == 8


@pytest.mark.parametrize("delta", [-1, -4999, +1, +10_000])
def test_body_of_the_wrong_size_is_a_body_mismatch(built: Cache, delta: int) -> None:
    victim = built.add("victim.whl", 5000)
    body = Path(entries.body_path(str(victim)))
    body.write_bytes(body_of(5000 + delta))

    scan = built.scan()

    assert kinds(scan) == {str(victim): "body-mismatch"}
    assert f"holds {5000 + delta} bytes" in scan.problems[0].reason


@pytest.mark.parametrize(
    "headers",
    [{"Content-Encoding": "gzip"}, {"Content-Length": "not-a-number"}, {"Content-Length": ""}],
    ids=["compressed", "unparsable-length", "no-length"],
)
def test_body_size_that_cannot_be_proven_wrong_is_fine(
    built: Cache, headers: dict[str, str]
) -> None:
    victim = built.add("victim.whl", 5000, headers=headers)
    Path(entries.body_path(str(victim))).write_bytes(b"short")
    assert built.scan().problems == []


def test_vary_mismatch_and_vary_star_are_fine(built: Cache) -> None:
    built.add(
        "vary.html",
        headers={"Vary": "Accept-Encoding"},
        request_headers={"Accept-Encoding": "zstd"},
    )
    built.add("star.html", headers={"Vary": "*"})
    scan = built.scan()
    assert scan.problems == []
    assert scan.ok_entries == 10


def test_filelock_files_and_a_fresh_metadata_without_body_are_part_of_the_layout(
    built: Cache,
) -> None:
    """Standalone CacheControl leaves ``<entry>.lock`` and ``<entry>.body.lock`` (filelock does
    not delete them), and publishes metadata a moment before its body."""
    entry = built.add("locked.whl")
    locks = [entry.with_name(entry.name + ".lock"), entry.with_name(entry.name + ".body.lock")]
    for lock in locks:
        lock.write_bytes(b"")
    writing = built.add("being-written.whl")
    Path(entries.body_path(str(writing))).unlink()
    before = files_under(built.root)

    scan = built.scan(fix=True, now=time.time())

    assert scan.problems == [] and scan.unrecognised == []
    assert files_under(built.root) == before


# -- what only a full scan sees ------------------------------------------------------------------


def test_body_without_metadata_is_an_orphan(built: Cache) -> None:
    victim = built.add("victim.whl")
    victim.unlink()
    scan = built.scan()
    assert kinds(scan) == {entries.body_path(str(victim)): "orphan"}
    assert scan.problems[0].reason == "body without metadata"
    assert scan.entries == 8


def test_metadata_without_body_is_an_orphan(built: Cache) -> None:
    victim = built.add("victim.whl")
    Path(entries.body_path(str(victim))).unlink()
    scan = built.scan()
    assert kinds(scan) == {str(victim): "orphan"}
    assert scan.problems[0].reason == "metadata without body"
    assert scan.problems[0].bytes == victim.stat().st_size


@pytest.mark.parametrize(
    ("age", "flagged"),
    [(2 * 3600, True), (TMP_GRACE_SECONDS + 1, True), (TMP_GRACE_SECONDS - 1, False), (5, False)],
)
def test_tmp_files_are_leftovers_only_after_the_grace_period(
    built: Cache, age: float, flagged: bool
) -> None:
    entry = built.add("page/")
    leftovers = [
        entry.with_name(entry.name + "k2j3h4.tmp"),
        entry.with_name(entry.name + ".bodyq9w8e7.tmp"),
    ]
    for leftover in leftovers:
        leftover.write_bytes(b"half written")
        os.utime(leftover, (NOW - age, NOW - age))

    scan = built.scan()

    expected = {str(path): "leftover-tmp" for path in leftovers} if flagged else {}
    assert kinds(scan) == expected
    assert scan.unrecognised == []


def test_cached_wheels_that_are_not_zip_files_are_bad(built: Cache) -> None:
    real = built.wheels / "ab" / "cd" / "ef" / ("12" * 28) / "demo-1.0-py3-none-any.whl"
    not_zip = built.add_wheel("x.whl", b"not a zip at all" * 10)
    cut = built.add_wheel("cut-1.0-py3-none-any.whl", real.read_bytes()[:-30])
    empty = built.add_wheel("empty-1.0-py3-none-any.whl", b"")

    scan = built.scan()

    assert kinds(scan) == {str(p): "bad-wheel" for p in (not_zip, cut, empty)}
    assert scan.wheels == 4


def test_files_outside_the_layout_are_unrecognised_not_problems(built: Cache) -> None:
    digest_entry = built.add("placed.whl")
    strays = [
        built.http / "README",
        built.http / "a" / "b" / "c" / "d" / "e" / "notahash",
        built.http / "a" / "b" / "shallow" / ("f" * 56),
        # a well-formed name in the wrong directory
        built.http / "0" / "0" / "0" / "0" / "0" / ("1" * 56),
        digest_entry.with_name("x" + digest_entry.name[1:] + ".lock"),  # not this dir's entry
    ]
    for stray in strays:
        stray.parent.mkdir(parents=True, exist_ok=True)
        stray.write_bytes(b"\xff garbage")
    before = files_under(built.root)

    scan = built.scan(fix=True)

    assert scan.problems == []
    assert {f.path for f in scan.unrecognised} == {str(p) for p in strays}
    assert all(f.kind == "unrecognised" and f.action == "kept" for f in scan.unrecognised)
    assert files_under(built.root) == before
    assert scan.entries == 9


def test_legacy_http_dir_is_scanned_and_reported_stale(built: Cache) -> None:
    good = [built.add_legacy(f"old-{n}.whl", 3000) for n in range(3)]
    assert all(path.is_file() for path in good)
    assert not any(p.endswith(".body") for p in files_under(built.legacy))

    scan = built.scan()

    assert scan.problems == []  # no .body is needed in http/
    assert scan.legacy is not None
    assert scan.legacy.path == str(built.legacy)
    assert scan.legacy.entries == 3
    assert scan.legacy.bytes == sum(p.stat().st_size for p in good)
    assert scan.legacy.stale is True
    assert scan.entries == 11 and scan.ok_entries == 11
    assert built.scan(legacy_is_stale=False).legacy.stale is False  # type: ignore[union-attr]


def test_damage_in_the_legacy_dir_is_found(built: Cache) -> None:
    victim = built.add_legacy("old.whl")
    victim.write_bytes(victim.read_bytes()[:100])
    assert kinds(built.scan()) == {str(victim): "corrupt"}


# -- --fix ---------------------------------------------------------------------------------------


def test_fix_deletes_exactly_the_damaged_files(built: Cache, tmp_path: Path) -> None:
    corrupt = built.add("corrupt.whl")
    corrupt.write_bytes(b"garbage")
    stale = built.add("stale.whl")
    stale.write_bytes(b"cc=3," + stale.read_bytes()[5:])
    short = built.add("short.whl", 9000)
    Path(entries.body_path(str(short))).write_bytes(b"x" * 100)
    lone_body = built.add("lone-body.whl")
    lone_body.unlink()
    lone_meta = built.add("lone-meta.whl")
    Path(entries.body_path(str(lone_meta))).unlink()
    leftover = lone_meta.with_name(lone_meta.name + "abc.tmp")
    leftover.write_bytes(b"x")
    os.utime(leftover, (NOW - 7200, NOW - 7200))
    bad_wheel = built.add_wheel("x.whl", b"nope")
    legacy = built.add_legacy("legacy.whl")
    legacy.write_bytes(b"cc=4,\x81")
    vary = built.add("vary/", headers={"Vary": "Accept"}, request_headers={"Accept": "x"})
    stray = built.http / "stray.txt"
    stray.write_text("keep me")

    removed = {
        str(corrupt),
        entries.body_path(str(corrupt)),
        str(stale),
        entries.body_path(str(stale)),
        str(short),
        entries.body_path(str(short)),
        entries.body_path(str(lone_body)),
        str(lone_meta),
        str(leftover),
        str(bad_wheel),
        str(legacy),
    }
    before = files_under(built.root)

    scan = built.scan(fix=True)

    after = files_under(built.root)
    assert set(before) - set(after) == removed
    assert after == {path: data for path, data in before.items() if path not in removed}
    assert {f.action for f in scan.problems} == {"deleted"}
    assert len(scan.problems) == 8 and scan.remaining == []
    assert scan.fixed is True
    assert scan.bytes_freed == sum(len(before[path]) for path in removed)
    assert str(vary) in after and str(stray) in after

    again = built.scan()
    assert again.problems == [] and [f.path for f in again.unrecognised] == [str(stray)]


def test_without_fix_nothing_changes(built: Cache) -> None:
    built.add("corrupt.whl").write_bytes(b"")
    built.add_wheel("x.whl", b"nope")
    before = files_under(built.root)
    scan = built.scan()
    assert len(scan.problems) == 2 and len(scan.remaining) == 2
    assert files_under(built.root) == before


def test_fix_never_follows_links(built: Cache, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim"
    victim.write_bytes(b"garbage, but not ours")
    # A link where an entry would be, a link where a body would be, a linked directory and wheel.
    linked_entry = Path(entries.entry_path(str(built.http), BASE + "linked.whl"))
    linked_entry.parent.mkdir(parents=True, exist_ok=True)
    linked_entry.symlink_to(victim)
    real = built.add("real.whl")
    linked_body_owner = built.add("body-link.whl")
    body = Path(entries.body_path(str(linked_body_owner)))
    body.unlink()
    body.symlink_to(victim)
    outside_entry = Path(entries.entry_path(str(outside / "http-v2"), BASE + "far.whl"))
    outside_entry.parent.mkdir(parents=True)
    outside_entry.write_bytes(b"garbage")
    Path(entries.body_path(str(outside_entry))).write_bytes(b"")
    free = next(c for c in "0123456789abcdef" if not (built.http / c).exists())
    (built.http / free).symlink_to(outside_entry.parents[4], target_is_directory=True)
    (built.wheels / "linked.whl").symlink_to(victim)
    before_outside = files_under(outside)

    scan = built.scan(fix=True)

    assert files_under(outside) == before_outside
    assert os.path.islink(linked_entry) and os.path.islink(body)
    assert str(linked_entry) in {f.path for f in scan.unrecognised}
    assert str(built.http / free) in {f.path for f in scan.unrecognised}
    # The entry whose body is a link: the link is reported, never judged through; not a problem
    # that --fix would fail to clear on every run.
    assert str(body) in {f.path for f in scan.unrecognised}
    assert scan.problems == [] and not scan.remaining
    assert linked_body_owner.is_file() and real.is_file()


def test_fix_keeps_an_orphan_whose_other_half_appears(
    built: Cache, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pip writing the pair right now: the body lands first, the metadata just after."""
    orphan = built.add("racing.whl")
    metadata = orphan.read_bytes()
    orphan.unlink()
    body_name = os.path.basename(entries.body_path(str(orphan)))
    real_size = verify._size

    def size_then_write(child: os.DirEntry[str]) -> int:
        if child.name == body_name and not orphan.exists():
            orphan.write_bytes(metadata)  # after the directory was listed, before the fix
        return real_size(child)

    monkeypatch.setattr(verify, "_size", size_then_write)

    scan = built.scan(fix=True)

    (finding,) = scan.problems
    assert finding.kind == "orphan" and finding.action == "kept"
    assert "appeared" in finding.reason
    assert Path(entries.body_path(str(orphan))).is_file() and orphan.is_file()
    assert scan.remaining == [finding]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("where", ["entry", "wheel"])
def test_a_fifo_in_the_cache_does_not_hang_verify(tmp_path: Path, where: str) -> None:
    cache = Cache(tmp_path / "pip")
    if where == "entry":
        path = Path(entries.entry_path(str(cache.http), BASE + "fifo.whl"))
    else:
        path = cache.wheels / "ab" / "fifo-1.0-py3-none-any.whl"
    path.parent.mkdir(parents=True)
    os.mkfifo(path)
    code = (
        "import sys; from pip_cache_guard.locate import CacheLocation; "
        "from pip_cache_guard.verify import verify; "
        "s = verify(CacheLocation(sys.argv[1], 't', False)); print(len(s.unrecognised))"
    )
    started = time.monotonic()
    try:
        result = subprocess.run(
            [sys.executable, "-c", code, str(cache.root)],
            capture_output=True,
            text=True,
            timeout=3,
            cwd=Path(__file__).resolve().parent.parent,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"verify still blocked after {time.monotonic() - started:.0f} s")
    assert result.returncode == 0, result.stderr


_real_scan_subtrees = verify.scan_subtrees


@dataclass(frozen=True)
class _ScanSubtreesNotingPid:
    """``verify.scan_subtrees`` that notes in ``pids`` which process ran it. It carries the file
    itself: a forkserver's child has its server's environment, the one of whichever test first
    started it (module level, so that spawn and forkserver can pickle it)."""

    pids: str

    def __call__(self, *args: Any) -> Scan:
        with open(self.pids, "a") as note:
            note.write(f"{os.getpid()}\n")
        return _real_scan_subtrees(*args)


@pytest.mark.parametrize("fix", [False, True])
@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_a_second_process_finds_and_fixes_exactly_what_one_process_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fix: bool, method: str
) -> None:
    """Large caches are split between two processes; the result must not depend on it, nor on
    how the process starts: fork (Linux), spawn (macOS, Windows), forkserver (Python 3.14's
    default on Linux, used when a thread runs). Each case after the first of a method meets the
    forkserver, and the modules a spawned process imported, that an earlier case left."""
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} here")

    def damaged_cache(root: Path) -> Cache:
        cache = Cache(root)
        for number in range(60):
            cache.add(f"pkg-{number}.whl", size=300)
        for number in range(0, 60, 7):
            cache.add(f"pkg-{number}.whl", size=300).write_bytes(b"garbage")
        orphan = cache.add("orphan.whl")
        orphan.unlink()
        return cache

    def relative(scan: Scan, root: Path) -> set[tuple[str, str, str]]:
        return {(os.path.relpath(f.path, root), f.kind, f.action) for f in scan.problems}

    monkeypatch.setattr(verify, "PARALLEL_SAMPLE_THRESHOLD", 10**9)
    alone = damaged_cache(tmp_path / "alone")
    one = alone.scan(fix=fix)
    monkeypatch.setattr(verify, "PARALLEL_SAMPLE_THRESHOLD", 0)
    monkeypatch.setattr(verify, "_process_context", lambda: multiprocessing.get_context(method))
    pids = tmp_path / "pids"
    monkeypatch.setattr(verify, "scan_subtrees", _ScanSubtreesNotingPid(str(pids)))
    split = damaged_cache(tmp_path / "split")
    two = split.scan(fix=fix)

    assert pids.read_text().split() != [str(os.getpid())], "the share ran in another process"

    assert relative(two, split.root) == relative(one, alone.root)
    assert len(one.problems) == 10
    assert (two.entries, two.ok_entries, two.bytes_total) == (
        one.entries,
        one.ok_entries,
        one.bytes_total,
    )
    assert files_under(split.root).keys() == {
        path.replace(str(alone.root), str(split.root)) for path in files_under(alone.root)
    }


def test_fix_counts_an_entry_another_process_deleted_as_done(
    built: Cache, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pip (or another verify) deletes the damaged entry between our read and our fix."""
    damaged = built.add("gone.whl")
    damaged.write_bytes(b"")
    real_diagnose = verify.diagnose

    def diagnose_then_another_process_deletes(data: bytes, *args: Any, **kwargs: Any) -> Any:
        verdict = real_diagnose(data, *args, **kwargs)
        if damaged.exists() and not data:
            damaged.unlink()
            Path(entries.body_path(str(damaged))).unlink()
        return verdict

    monkeypatch.setattr(verify, "diagnose", diagnose_then_another_process_deletes)

    scan = built.scan(fix=True)

    (finding,) = scan.problems
    assert finding.action == "already-deleted" and "already gone" in finding.reason
    assert scan.remaining == []
    text = render.verify_text(scan)
    assert (
        "fixed: 0 deleted (0 bytes freed), 1 already deleted by another process, 0 remain" in text
    )


# -- a CacheControl directory given directly -----------------------------------------------------


@pytest.mark.parametrize("name", ["_http_", "salad-cache"])
def test_a_separate_body_cachecontrol_directory_is_checked_as_one(
    built: Cache, tmp_path: Path, name: str
) -> None:
    """Poetry's ``_http_`` (known by name) or any other (known by its ``.body`` files)."""
    victim = built.add("victim.whl")
    Path(entries.body_path(str(victim))).unlink()
    garbage = built.add("garbage.whl")
    garbage.write_bytes(b"\x00" * 40)
    directory = built.http.rename(tmp_path / name)

    scan = verify.verify(CacheLocation(str(directory), "test", False), fix=True, now=NOW)

    def moved(path: Path) -> str:
        return str(directory / path.relative_to(built.http))

    assert {f.path: f.kind for f in scan.problems} == {
        moved(victim): "orphan",
        moved(garbage): "corrupt",
    }
    assert all(f.action == "deleted" for f in scan.problems)
    assert scan.entries == 10 and scan.ok_entries == 8 and scan.unrecognised == []


def test_an_unreadable_date_is_judged_as_the_reader_of_the_directory_reads_it(
    tmp_path: Path,
) -> None:
    """pip's cache as pip's vendored CacheControl (0.12-0.14) reads it: damage. A CacheControl
    directory as the standalone cachecontrol installed here reads it (0.15 keeps the entry for
    revalidation), and the output names that rule."""
    cache = Cache(tmp_path / "pip")
    undated = cache.add("undated.whl", headers={"Date": "garbage"})
    installed = importlib.metadata.version("cachecontrol")
    keeps = standalone_reader(installed).keeps_unparsable_date

    pip_scan = cache.scan()
    directory = cache.http.rename(tmp_path / "_http_")
    scan = verify.verify(CacheLocation(str(directory), "test", False), now=NOW)

    assert kinds(pip_scan) == {str(undated): "corrupt"}
    assert "pip's vendored CacheControl fails on it" in pip_scan.problems[0].reason
    assert pip_scan.judged_as is None and render.verify_json(pip_scan)["judged_as"] is None
    assert "judged as" not in render.verify_text(pip_scan)
    assert scan.problems_found == (0 if keeps else 1)
    assert render.verify_json(scan)["judged_as"] == f"cachecontrol {installed}"
    assert f"judged as cachecontrol {installed} reads it" in render.verify_text(scan)


def test_a_body_inside_cachecontrol_directory_with_lock_files(tmp_path: Path) -> None:
    """Poetry 2.0-2.3's ``_http``, pip-audit's cache: FileCache, body inside, filelock's locks;
    an interrupted 0.14.2+ write leaves a ``tmpXXXXXXXX`` file."""
    directory = tmp_path / "pip-audit"
    paths = []
    for number in range(3):
        url = BASE + f"inside-{number}.whl"
        path = Path(entries.entry_path(str(directory), url))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(genuine_metadata(url, body_of(500, number), separate_body=False))
        path.with_name(path.name + ".lock").write_bytes(b"")
        paths.append(path)
    paths[0].write_bytes(paths[0].read_bytes()[:-100])
    leftover = paths[1].with_name("tmpa1b2_c3d")
    leftover.write_bytes(b"half")
    os.utime(leftover, (NOW - 2 * TMP_GRACE_SECONDS,) * 2)

    scan = verify.verify(CacheLocation(str(directory), "test", False), fix=True, now=NOW)

    assert {f.path: f.kind for f in scan.problems} == {
        str(paths[0]): "corrupt",
        str(leftover): "leftover-tmp",
    }
    assert scan.unrecognised == [] and scan.ok_entries == 2
    left = sorted(p.name for p in directory.rglob("*") if p.is_file())
    assert left == sorted([paths[1].name, paths[2].name] + [p.name + ".lock" for p in paths])


# -- claims left by a process that died while deleting ------------------------------------------


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                           capture_output=True, text=True)  # fmt: skip
    return int(child.stdout)


def claim(path: Path, pid: int, proof: str = "") -> Path:
    """Do what ``entries._claim`` does, as a process ``pid`` that then died; ``proof``: the
    sha256 of the bytes it had proven bad."""
    mark = f".bad-sha256-{proof}" if proof else ""
    claimed = path.with_name(f"{path.name}.{pid}-0badc0de{mark}{entries.CLAIM_SUFFIX}")
    path.rename(claimed)
    return claimed


@pytest.mark.parametrize("which", ["metadata", "body"])
def test_a_good_file_claimed_by_a_dead_process_goes_back(built: Cache, which: str) -> None:
    """Killed between taking a good file (to re-check it) and giving it back: nothing lost."""
    entry = built.add("victim.whl")
    before = files_under(built.root)
    taken = Path(entries.body_path(str(entry))) if which == "body" else entry
    claimed = claim(taken, dead_pid())

    found = built.scan()
    assert kinds(found) == {str(claimed): "leftover-tmp"}
    assert "valid entry" in found.problems[0].reason
    assert found.remaining

    fixed = built.scan(fix=True)
    assert [f.action for f in fixed.problems] == ["restored"]
    assert fixed.remaining == [] and fixed.ok_entries == 9
    assert files_under(built.root) == before
    assert built.scan().problems == []


@pytest.mark.parametrize("which", ["metadata", "body"])
def test_a_damaged_file_claimed_by_a_dead_process_is_deleted(built: Cache, which: str) -> None:
    """Killed between taking a damaged entry's file and deleting it: --fix finishes the job."""
    entry = built.add("victim.whl")
    entry.write_bytes(b"cc=4,\xc1 garbage")
    before = files_under(built.root)
    taken = Path(entries.body_path(str(entry))) if which == "body" else entry
    claimed = claim(taken, dead_pid())

    fixed = built.scan(fix=True)

    assert fixed.remaining == []
    assert str(claimed) in {f.path for f in fixed.problems if f.action == "deleted"}
    after = files_under(built.root)
    assert {path for path in before if path not in after} == {
        str(entry),
        entries.body_path(str(entry)),
    }
    assert all(after[path] == before[path] for path in after)


def test_a_claim_replaced_by_a_newer_file_is_deleted_and_the_newer_one_kept(
    built: Cache,
) -> None:
    entry = built.add("victim.whl")
    claimed = claim(entry, dead_pid())
    newer = genuine_metadata(BASE + "victim.whl", body_of(2000, len("victim.whl")), headers={
        "ETag": '"newer"'})  # fmt: skip
    entry.write_bytes(newer)

    fixed = built.scan(fix=True)

    assert [(f.path, f.action) for f in fixed.problems] == [(str(claimed), "deleted")]
    assert entry.read_bytes() == newer and not claimed.exists()


def test_a_claim_of_a_living_process_is_left_alone(built: Cache) -> None:
    entry = built.add("victim.whl")
    before = files_under(built.root)
    claimed = claim(entry, os.getppid())

    scan = built.scan(fix=True)

    assert str(claimed) not in kinds(scan)
    assert files_under(built.root) == {
        (str(claimed) if path == str(entry) else path): data for path, data in before.items()
    }


@pytest.mark.parametrize("layout", ["http-v2", "http"])
def test_a_file_its_dead_claimant_had_proven_bad_is_deleted_never_restored(
    built: Cache, layout: str
) -> None:
    """Bit rot (one byte flipped, size intact) that pip's hash check found: the claim's name
    carries the sha256 of the rejected bytes; verify shows that proof and --fix deletes the file
    (and the metadata it leaves alone), where a size check would have called it valid."""
    if layout == "http-v2":
        entry = built.add("rotted.whl", size=3000)
        held = Path(entries.body_path(str(entry)))
    else:
        entry = held = built.add_legacy("rotted.whl", size=3000)
    data = bytearray(held.read_bytes())
    data[-100] ^= 0xFF
    held.write_bytes(bytes(data))
    proof = hashlib.sha256(bytes(data)).hexdigest()
    claimed = claim(held, dead_pid(), proof)

    found = built.scan()
    (finding,) = found.problems
    assert (finding.path, finding.kind) == (str(claimed), "leftover-tmp")
    assert "proven damaged" in finding.reason and proof in finding.reason
    assert proof in render.verify_text(found)
    assert render.verify_json(found)["problems"][0]["reason"] == finding.reason

    fixed = built.scan(fix=True)

    assert {f.path: f.action for f in fixed.problems}.get(str(claimed)) == "deleted"
    assert fixed.remaining == []
    assert not claimed.exists() and not held.exists() and not entry.exists()
    again = built.scan()
    assert again.problems == [] and again.ok_entries == 8


def test_a_proof_of_other_bytes_than_the_claim_holds_proves_nothing(built: Cache) -> None:
    """A pip that read bad bytes, then claimed a fresh body another pip had just stored in their
    place: the proof is not about that body, which goes back."""
    entry = built.add("victim.whl")
    before = files_under(built.root)
    body = Path(entries.body_path(str(entry)))
    claimed = claim(body, dead_pid(), hashlib.sha256(b"the rejected bytes").hexdigest())

    fixed = built.scan(fix=True)

    assert [(f.path, f.action) for f in fixed.problems] == [(str(claimed), "restored")]
    assert files_under(built.root) == before


# -- claims in wheels/ ----------------------------------------------------------------------------


@pytest.mark.parametrize("held", ["good wheel", "bad wheel", "origin.json"])
def test_a_claim_in_wheels_left_by_a_dead_pip_is_reported_and_settled(
    built: Cache, held: str
) -> None:
    """A guarded pip killed while deleting a built wheel (or its origin.json) leaves the claim
    in wheels/: a wheel the hook's own check passes goes back, anything else is deleted."""
    wheel = built.add_wheel("victim-1.0-py3-none-any.whl")
    if held == "bad wheel":
        wheel.write_bytes(b"PK\x03\x04 not a zip")
    taken = wheel.with_name("origin.json") if held == "origin.json" else wheel
    before = files_under(built.root)
    claimed = claim(taken, dead_pid())

    found = built.scan()
    assert kinds(found) == {str(claimed): "leftover-tmp"}
    assert found.remaining_found == 1

    fixed = built.scan(fix=True)

    expected = "restored" if held == "good wheel" else "deleted"
    assert [(f.path, f.action) for f in fixed.problems] == [(str(claimed), expected)]
    assert fixed.remaining == [] and not claimed.exists()
    after = files_under(built.root)
    if held == "good wheel":
        assert after == before and fixed.wheels == 2
    else:
        assert after == {path: data for path, data in before.items() if path != str(taken)}
    assert built.scan().problems == []


def test_a_claim_in_wheels_of_a_living_process_is_left_alone(built: Cache) -> None:
    wheel = built.add_wheel("victim-1.0-py3-none-any.whl")
    claimed = claim(wheel, os.getppid())

    scan = built.scan(fix=True)

    assert scan.problems == [] and claimed.exists()


@pytest.mark.parametrize(
    ("method", "entries_in_cache", "split"),
    [("fork", 1000, True), ("spawn", 1000, False), ("forkserver", 1000, False),
     ("spawn", 6000, True)],
)  # fmt: skip
def test_a_second_process_is_started_only_where_it_pays_off(
    tmp_path: Path, method: str, entries_in_cache: int, split: bool
) -> None:
    """A fresh interpreter (spawn, forkserver) costs 20 to 50 times a fork: a cache of 1,000
    entries is scanned faster alone; one of 6,000 is worth the split either way."""
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one core: never a second process")
    http = tmp_path / "http-v2"
    for number in range(entries_in_cache):  # the directories of the layout, as pip spreads them
        digest = hashlib.sha224(f"{number}".encode()).hexdigest()
        (http / digest[0] / digest[1] / digest[2] / digest[3] / digest[4]).mkdir(
            parents=True, exist_ok=True
        )
    subtrees = sorted(str(child) for child in http.iterdir())

    worth = verify._worth_a_second_process(subtrees, multiprocessing.get_context(method))

    assert worth is split
