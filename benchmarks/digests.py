"""What checking cached bodies against a digest costs inside pip (issue 17, item 4).

    python benchmarks/digests.py [--rounds 15] [--pip 26.3] [--payload-mb 3] [--read-loops 30]
                                 [--compare-wheel OTHER.whl]

Builds the guard wheel and one venv with that pip and the guard (as `pip_run.py` does), builds the
tests' six `guardtest-*` wheels with `--payload-mb` MB of incompressible payload each (the tests'
own are 20-200 kB, too small for hashing to show), serves them from the tests' loopback index and
times three `pip download`s side by side with `PIP_CACHE_GUARD=0` (the kill switch) and without,
interleaved in random order, each by its wall time and by the CPU time (user + system) of pip's
process, which a busy shared machine disturbs far less; as the ratio of the medians and as the
median (and IQR) of each round's own ratio:

1. warm cache, links without a hash (`LoopbackIndex(hashes=False)`): the guard hashes each body
   as pip reads it, against the record it stored when the cache was filled (guard on);
2. storing: the same download into an empty cache (a fresh cache directory every run): the guard
   hashes each body pip stores, to record its digest;
3. warm cache, links with `#sha256=` (PyPI's case): pip checks the hash itself, so the guard
   neither records nor hashes; this prices the guard's other work on the same bytes.

Each fills its cache once with the guard on and counts the entries that then carry the guard's
record (in the venv, with pip's msgpack), so the numbers are known to time what they say. Then,
inside one process of the venv, it times reading one body of `--payload-mb` MB as pip's
downloader does (`response_chunks` over urllib3's `HTTPResponse` stream, the response built as
CacheControl's `prepare_response` builds it), bare and through `hook.body_digests.watch`'s
`DigestingBody`, from a file (pip >= 23.3) and from memory (pip <= 23.2), next to one
`hashlib.sha256` of the same bytes and the store side's `digests.record_of` and
`digests.with_record`: the cost per MB. Prints the load average before, between and after. Not a
test: it judges nothing (issue 17's bar, within 3 % of the kill switch, is printed for reference)
and exits 0 when it could measure.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import guarded_pips  # first: it puts the tests' `support` package on the path
import pip_run

from support.index import LoopbackIndex  # (the tests' own loopback index)
from support.wheels import DEFAULT_PACKAGES, build_wheel

MB = 1_000_000
# (what is timed, links carry #sha256, the cache is filled once before the rounds)
SCENARIOS = [
    ("warm cache, no-hash links: bodies hashed as pip reads them", False, True),
    ("storing into an empty cache, no-hash links: stored bodies hashed", False, False),
    ("warm cache, #sha256 links (PyPI's case): nothing hashed by the guard", True, True),
]


def main() -> int:
    return guarded_pips.run(__doc__.splitlines()[0], "pcg-digests-", measure, _options)


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--payload-mb", type=float, default=3.0, help="payload of each of the six wheels, in MB"
    )
    parser.add_argument(
        "--read-loops", type=int, default=30, help="rounds of the in-process body reads"
    )


def measure(args: argparse.Namespace, tmp: Path) -> int:
    pythons = guarded_pips.pythons(args, tmp)
    python = pythons["guard on"]
    size = round(args.payload_mb * MB)
    wheels = [
        build_wheel(tmp / "wheels", project, payload_size=size) for project in DEFAULT_PACKAGES
    ]
    loads = [_load()]
    results: list[tuple[str, list[dict[str, list[float]]], str]] = []
    saved = tmp / "dl"
    for number, (label, hashes, warm) in enumerate(SCENARIOS):
        cache = tmp / f"cache-{number}"
        with LoopbackIndex((w.path for w in wheels), hashes=hashes) as index:
            download = [
                "-m", "pip", "download", "-q", "--no-deps", "--cache-dir", str(cache),
                "--index-url", index.url, "--trusted-host", "127.0.0.1", "-d", str(saved),
                *(w.project for w in wheels),
            ]  # fmt: skip

            def before(cache: Path = cache, warm: bool = warm) -> None:
                shutil.rmtree(saved, ignore_errors=True)  # else pip takes the files it finds there
                if not warm:
                    shutil.rmtree(cache, ignore_errors=True)

            before()
            fill = guarded_pips.environment(tmp, "guard on")
            subprocess.run([python, *download], env=fill, check=True)
            records = _records(python, cache)
            times = pip_run.interleaved(pythons, download, tmp, args.rounds, before, child_cpu=True)
        results.append((label, times, records))
        loads.append(_load())
    total = sum(w.size for w in wheels) / MB
    print(
        f"pip {args.pip}, {len(wheels)} wheels of {total / len(wheels):.2f} MB ({total:.1f} MB in"
        f" all), {args.rounds} rounds, medians of"
        " interleaved runs, guard off (PIP_CACHE_GUARD=0) / on; issue 17's bar: within 3 %",
        flush=True,
    )
    for label, (wall, cpu), records in results:
        for what, times in ((f"{label}: wall time", wall), (f"{label}: CPU time of pip", cpu)):
            pip_run.show(what, times)
            _paired(times)
        print(f"    cache entries with the guard's record after the fill (guard on): {records}")
    _digests_share(results)
    print(
        f"in-process, one body of {size / MB:g} MB read as pip reads it ({args.read_loops} rounds)"
    )
    read_costs = f"import digests; digests.read_costs({size}, {args.read_loops})"
    code = f"import sys; sys.path[:0] = [{str(Path(__file__).parent)!r}]; {read_costs}"
    subprocess.run([python, "-c", code], env=guarded_pips.environment(tmp, "guard on"), check=True)
    loads.append(_load())
    print(f"load average (1 min) before, after each download, after: {', '.join(loads)}")
    return 0


def _load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def _paired(times: dict[str, list[float]]) -> None:
    """The ratios on/off of each round's own pair of runs (less disturbed by the machine's drift
    over the rounds): their median and interquartile range."""
    for setting in list(times)[1:]:
        ratios = [on / off for on, off in zip(times[setting], times["guard off"])]
        low, median, high = statistics.quantiles(ratios, n=4)
        print(f"      ratio of each round's pair: median {median:.3f}, IQR {low:.3f}-{high:.3f}")


def _digests_share(results: list[tuple[str, list[dict[str, list[float]]], str]]) -> None:
    """The hashing's own CPU time on a warm cache: what the guard adds over the kill switch with
    no-hash links, less what it adds with #sha256 links (the same bytes, nothing hashed)."""
    cpu = {hashed: times[1] for (_, times, _), (_, hashed, warm) in zip(results, SCENARIOS) if warm}

    def added(times: dict[str, list[float]]) -> float:
        return statistics.median(times["guard on"]) - statistics.median(times["guard off"])

    print(
        "  the digests' share of a warm run's CPU time (guard on - off, no-hash links, less the"
        f" same with #sha256 links): {(added(cpu[False]) - added(cpu[True])) * 1e3:+.1f} ms"
    )


_COUNT_RECORDS = """\
import pathlib, sys
from pip._vendor import msgpack
from pip_cache_guard import digests
wheels = entries = records = wheel_records = 0
for path in pathlib.Path(sys.argv[1]).rglob("*"):
    data = path.read_bytes() if path.is_file() and path.suffix != ".body" else b""
    if not data.startswith(b"cc=4,"):
        continue
    document = msgpack.loads(data[5:], raw=False)
    headers = {k.lower(): v for k, v in document["response"]["headers"].items()}
    wheel = headers.get("content-type") == "application/octet-stream"
    record = digests.recorded(document) is not None
    entries, records = entries + 1, records + record
    wheels, wheel_records = wheels + wheel, wheel_records + (wheel and record)
print(f"{records} of {entries} ({wheel_records} of the {wheels} wheels)")
"""


def _records(python: Path, cache: Path) -> str:
    """How many of the cache's entries (and of its wheels) carry the guard's record."""
    run = [python, "-c", _COUNT_RECORDS, cache]
    return subprocess.run(run, check=True, capture_output=True, text=True).stdout.strip()


def read_costs(size: int, loops: int) -> None:
    """(Run by the venv's Python, with pip and the guard.) Time reading a body of ``size`` bytes
    as pip's downloader reads a cache hit, bare and watched, and the store side's hashing; print
    the medians in ms per MB."""
    import hashlib
    import io
    import tempfile
    from types import SimpleNamespace

    from pip._internal.network.utils import response_chunks
    from pip._vendor import msgpack
    from pip._vendor.urllib3 import HTTPResponse

    from pip_cache_guard import digests
    from pip_cache_guard.hook import body_digests

    body = random.Random(0).randbytes(size)
    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
    record = digests.record_of(body)
    document = {"response": {"headers": headers, "status": 200}, digests.RECORD_KEY: record}
    expectation = body_digests.expectation(document, size)
    inline = {"response": {"body": body, "headers": headers, "status": 200}, "vary": {}}
    blob = b"cc=4," + msgpack.dumps(inline, use_bin_type=True)

    def pack(value: Any) -> bytes:
        return bytes(msgpack.dumps(value, use_bin_type=True))

    with tempfile.NamedTemporaryFile() as file:
        file.write(body)
        file.flush()

        def read(from_file: bool, watched: bool) -> None:
            fp = open(file.name, "rb") if from_file else io.BytesIO(body)  # noqa: SIM115
            with fp:
                response = HTTPResponse(
                    body=fp, headers=headers, status=200, preload_content=False,
                    decode_content=False,
                )  # fmt: skip
                if watched:
                    body_digests.watch(response, expectation)
                for _ in response_chunks(SimpleNamespace(raw=response)):
                    pass
                verdict = getattr(getattr(response, body_digests.BODY, None), "_self_verdict", None)
                if watched and verdict is not True:
                    raise SystemExit(f"the watched body was not verified: {verdict!r}")

        tasks = {
            "body file, bare (pip >= 23.3, kill switch)": lambda: read(True, False),
            "body file, through DigestingBody": lambda: read(True, True),
            "in-memory body, bare (pip <= 23.2)": lambda: read(False, False),
            "in-memory body, through DigestingBody": lambda: read(False, True),
            "hashlib.sha256 of the bytes alone": lambda: hashlib.sha256(body).hexdigest(),
            "storing: digests.record_of (the stored body)": lambda: digests.record_of(body),
            "storing, pip <= 23.2: digests.with_record": lambda: digests.with_record(
                blob, record, pack
            ),
        }
        times: dict[str, list[float]] = {name: [] for name in tasks}
        for _ in range(loops):
            for name in random.sample(list(tasks), len(tasks)):
                started = time.process_time()
                tasks[name]()
                times[name].append(time.process_time() - started)
    per_mb = {
        name: statistics.median(samples) * 1e3 / (size / MB) for name, samples in times.items()
    }
    for name, cost in per_mb.items():
        print(f"  {name:<48} {cost:6.3f} ms/MB (CPU)")
    for bare, watched in (
        ("body file, bare", "body file, through"),
        ("in-memory body, bare", "in-memory body, through"),
    ):
        [bare_cost] = [cost for name, cost in per_mb.items() if name.startswith(bare)]
        [watched_cost] = [cost for name, cost in per_mb.items() if name.startswith(watched)]
        print(f"  {bare.split(',')[0]}: DigestingBody adds {watched_cost - bare_cost:.3f} ms/MB")


if __name__ == "__main__":
    sys.exit(main())
