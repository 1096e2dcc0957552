"""What the guard's per-lookup judgements cost: ``judge_document`` on a hit, ``wheel_problem``
on a cached built wheel (against a full CRC pass, which the guard does not do).

    python benchmarks/hit_checks.py [WHEEL ...]

Without arguments it prices the wheel check on a 20 kB test wheel; give large real wheels (a
SciPy or PyTorch wheel) to see what the check costs where it matters. Runs in-process with the
installed pip's vendored msgpack (pure Python, as inside pip), in an environment where
pip-cache-guard is installed; judges nothing, exits 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import timeit
import zipfile
from pathlib import Path
from typing import Any, Callable

from pip._vendor import msgpack  # what the hook decodes with inside pip: pip's own copy

from pip_cache_guard.diagnose import judge_document, wheel_problem

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from support.wheels import build_wheel  # noqa: E402


def _unpack(payload: bytes) -> Any:
    return msgpack.loads(payload, raw=False)


def _entry(body: bytes, length: int) -> bytes:
    """Metadata as CacheControl writes it for a wheel download (``body`` inside: pip <= 23.2)."""
    headers = {
        "Content-Type": "application/octet-stream",
        "Content-Length": str(length),
        "ETag": '"0123456789abcdef"',
        "Date": "Fri, 27 Nov 2026 08:00:00 GMT",
        "Cache-Control": "max-age=365000000, immutable, public",
    }
    response = {
        "body": body,
        "headers": headers,
        "status": 200,
        "version": 11,
        "reason": "OK",
        "decode_content": False,
    }
    return b"cc=4," + msgpack.dumps({"response": response, "vary": {}}, use_bin_type=True)


def _seconds(action: Callable[[], object], budget: float = 0.5) -> float:
    timer = timeit.Timer(action)
    number, _ = timer.autorange()
    runs = max(1, int(budget / (timer.timeit(number) / number)))
    return min(timer.repeat(repeat=3, number=runs)) / runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheels", nargs="*", type=Path)
    args = parser.parse_args()
    print(
        "judge_document on a cache hit (the document pip's serializer just decoded: no second "
        f"decode, no body read), next to pip's own decode ({msgpack.Unpacker.__module__})"
    )
    cases = [
        ("http-v2 metadata, body in its .body file", _entry(b"", 100_000), 100_000),
        ("pip <= 23.2: 100 kB body inside", _entry(b"x" * 100_000, 100_000), None),
        ("pip <= 23.2: 10 MB body inside", _entry(b"x" * 10_000_000, 10_000_000), None),
    ]
    for label, data, body_size in cases:
        document = _unpack(data[len(b"cc=4,") :])
        seconds = _seconds(lambda: judge_document(document, None, body_size))  # noqa: B023
        pips_own = _seconds(lambda: _unpack(data[len(b"cc=4,") :]))  # noqa: B023
        print(f"  {label:45s} {seconds * 1e6:9.1f} us (pip's own decode {pips_own * 1e6:.1f} us)")
    with tempfile.TemporaryDirectory() as scratch:
        wheels = args.wheels or [build_wheel(Path(scratch), "guardtest-alpha").path]
        print("wheel_problem on a cached built wheel, against zipfile.testzip (full CRC pass)")
        for wheel in wheels:
            with zipfile.ZipFile(wheel) as archive:
                members = len(archive.infolist())
            check = _seconds(lambda: wheel_problem(str(wheel)))  # noqa: B023

            def full_pass(path: Path = wheel) -> None:
                with zipfile.ZipFile(path) as archive:
                    archive.testzip()

            full = _seconds(full_pass, budget=1.0)
            size = os.path.getsize(wheel) / 1e6
            print(
                f"  {wheel.name[:45]:45s} {size:6.1f} MB {members:6d} files: "
                f"check {check * 1e3:7.2f} ms, testzip {full * 1e3:8.1f} ms"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
