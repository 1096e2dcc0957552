#!/usr/bin/env python3
"""``pip-cache-guard verify`` at scale: its peak memory from 20,000 to 1,000,000 entries, and its
time against ``pip cache info`` at 100,000 entries, side by side.

Issue 10 asks for peak memory flat from 20,000 to 1,000,000 entries (under 100 MiB) and a time of at
most half that of ``pip cache info`` (same pip, same cache) at 100,000 entries.

1. Builds the guard wheel from this checkout (or takes ``--wheel``), makes two venvs with pip 26.3:
   "pip" (pip alone) and "guard" (pip and the guard wheel with its dependencies).
2. Writes synthetic pip caches (``http-v2``) of each ``--sizes`` under ``--cache-root``, or reuses
   the one already there. Entries are written directly, in the exact bytes CacheControl's
   ``Serializer`` writes (checked against it for the first entries of each sort): ``cc=4,`` +
   msgpack metadata, and a ``.body`` beside it. Half are index pages (bodies 200 B - 6 kB, written),
   four in ten wheels (bodies 10 kB - 20 MB, sparse: both tools only stat them), one in ten
   permanent redirects (metadata and an empty body). 16 damaged files are added (garbage, ``cc=2``,
   short bodies, orphan bodies, old ``*.tmp`` leftovers); both tools must see what they should.
3. At every size, runs ``verify``, ``verify --json`` and ``pip cache info`` once (after an untimed
   warm-up ``verify``) and reads each child's peak RSS: exactly, as the largest of its processes
   (``os.wait4``; verify scans a large cache in two processes), and as the largest sum over its
   processes, sampled every 10 ms from ``/proc`` (an upper bound: forked pages count twice).
4. At ``--time-at`` sizes, times ``pip cache info``, ``verify`` and ``verify --json`` for
   ``--rounds`` rounds, the order rotating each round, after one warm-up each (page cache warm).

Standard library only; needs the package registry for the venvs. Exit status: 0 when every budget is
met (PASS), 1 when not, 2 when the benchmark could not run.

    python benchmarks/verify.py [--sizes 20000,100000] [--million] [--time-at 100000] [--rounds 5]
                                [--cache-root DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PIP_VERSION = "26.3"
MIB = 1024 * 1024
MEMORY_BUDGET = 100 * MIB  # verify's peak, every process together, at any size
FLAT_MEMORY_BYTES = 4 * MIB  # verify's peak may grow this much from the smallest to the largest
TIME_BUDGET = 0.5  # verify's median over pip cache info's
GENERATOR_VERSION = 2  # bump when the generator writes something else: caches are rebuilt
PIP_INFO, VERIFY, VERIFY_JSON = "pip cache info", "pip-cache-guard verify", "verify --json"

# Runs inside the guard venv (msgpack, and CacheControl, requests, urllib3 to check the bytes).
GENERATOR = r"""
import email.utils, hashlib, io, json, math, os, random, sys
import msgpack

root, count, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
http = os.path.join(root, "http-v2")
pool = rng.randbytes(8192)
INDEX_ACCEPT = "application/vnd.pypi.simple.v1+json, text/html;q=0.01"
files = apparent = 0


def log_uniform(low, high):
    return int(math.exp(rng.uniform(math.log(low), math.log(high))))


def place(url):
    digest = hashlib.sha224(url.encode()).hexdigest()
    directory = os.path.join(http, *digest[:5])
    os.makedirs(directory, exist_ok=True)
    return os.path.join(directory, digest)


def describe(number):
    # (url, status, response headers, request headers, body size, written or sparse body)
    name = f"project-{number:07d}"
    etag = '"' + hashlib.md5(f"{seed}-{number}".encode()).hexdigest() + '"'
    sort = number % 10
    date = email.utils.formatdate(1_735_689_600 + rng.randrange(330 * 86400), usegmt=True)
    if sort < 5:
        size = log_uniform(200, 6000)
        url = f"https://pypi.org/simple/{name}/"
        headers = {"Content-Type": "application/vnd.pypi.simple.v1+json",
                   "Content-Length": str(size), "ETag": etag, "Date": date,
                   "Cache-Control": "max-age=600, public", "Vary": "Accept-Encoding, Accept",
                   "X-PyPI-Last-Serial": str(number)}
        request_headers = {"Accept-Encoding": "identity", "Accept": INDEX_ACCEPT}
        return url, 200, headers, request_headers, size, True
    if sort < 9:
        size = log_uniform(10_000, 20_000_000)
        digest = hashlib.sha256(name.encode()).hexdigest()
        url = (f"https://files.pythonhosted.org/packages/{digest[:2]}/{digest[2:4]}/"
               f"{digest[4:]}/{name.replace('-', '_')}-1.0-py3-none-any.whl")
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size),
                   "ETag": etag, "Last-Modified": date, "Date": date, "Age": "3600",
                   "Accept-Ranges": "bytes", "X-Served-By": "cache-bench-1", "X-Cache": "HIT",
                   "Cache-Control": "max-age=365000000, immutable, public"}
        return url, 200, headers, {"Accept-Encoding": "identity"}, size, False
    url = f"https://pypi.org/simple/Project_{number:07d}/"
    headers = {"Location": f"https://pypi.org/simple/{name}/", "Content-Length": "0",
               "Date": date, "Cache-Control": "max-age=31536000, public"}
    return url, 301, headers, {"Accept-Encoding": "identity"}, 0, True


def metadata(status, headers, request_headers):
    # What Serializer.dumps(request, response, b"") writes (checked below).
    response = {"body": b"", "headers": headers, "status": status, "version": 11,
                "reason": metadata_reason(status), "decode_content": False}
    vary = {}
    for header in headers.get("Vary", "").split(","):
        if header.strip():
            vary[header.strip()] = request_headers.get(header.strip())
    return b"cc=4," + msgpack.dumps({"response": response, "vary": vary}, use_bin_type=True)


def check_against_serializer():
    import requests, urllib3
    from cachecontrol.serialize import Serializer
    for number in (0, 5, 9):
        url, status, headers, request_headers, size, _written = describe(number)
        request = requests.Request("GET", url, headers=request_headers).prepare()
        response = urllib3.HTTPResponse(body=io.BytesIO(b""), headers=headers, status=status,
                                        version=11, reason=metadata_reason(status),
                                        preload_content=False, decode_content=False)
        genuine = Serializer().dumps(request, response, b"")
        assert genuine == metadata(status, headers, request_headers), (number, genuine)


def metadata_reason(status):
    return "OK" if status == 200 else "Moved Permanently"


def write(path, data=b"", size=None):
    global files, apparent
    with open(path, "wb") as stream:
        if size is None:
            stream.write(data)
        else:
            stream.truncate(size)  # sparse: no blocks, the size pip and verify see
    files += 1
    apparent += len(data) if size is None else size


check_against_serializer()
rng.seed(seed)
numbers = range(count)
garbage, old_format = set(rng.sample(numbers, 4)), set(rng.sample(numbers, 2))
candidates = [n for n in rng.sample(numbers, 40) if n % 10 != 9 and n not in garbage | old_format]
short = set(candidates[:4])  # bodies of 200 responses, cut in half
damaged = len(garbage | old_format) + len(short)
for number in numbers:
    url, status, headers, request_headers, size, written = describe(number)
    data = metadata(status, headers, request_headers)
    if number in garbage:
        data = rng.randbytes(300).replace(b"cc=", b"xx=")
    elif number in old_format:
        data = b"cc=2," + data[5:]
    if number in short:
        size //= 2
    path = place(url)
    write(path, data)  # metadata first, as CacheControl writes
    if written:
        write(path + ".body", pool[:size])
    else:
        write(path + ".body", size=size)
for number in range(3):  # bodies without metadata, old tmp files
    orphan = place(f"https://pypi.org/simple/orphan-{number}/")
    write(orphan + ".body", pool[:5000])
    leftover = orphan + f"{number}k2j3h.tmp"
    write(leftover, pool[:700])
    old = 1_700_000_000
    os.utime(leftover, (old, old))
    damaged += 2
print(json.dumps({"entries": count, "damaged": damaged, "files": files, "bytes": apparent}))
"""


class BenchError(Exception):
    """A setup step failed; the benchmark cannot say PASS or FAIL."""


@dataclass
class Run:
    seconds: float
    cpu: float  # user + system seconds of the command's processes
    max_rss: int  # bytes: the largest of the command's processes (exact)
    max_rss_sum: int  # bytes: the largest sum over its processes (sampled)
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Series:
    name: str
    runs: list[Run] = field(default_factory=list)

    @property
    def times(self) -> list[float]:
        return [run.seconds for run in self.runs]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def cpu_median(self) -> float:
        return statistics.median(run.cpu for run in self.runs)


@dataclass
class Cache:
    path: Path
    entries: int
    damaged: int
    files: int
    bytes: int


def install_env() -> dict[str, str]:
    """The machine's environment (its pip configuration reaches the registry) for setup steps."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "PIP_CACHE_GUARD", "VIRTUAL_ENV"))
    }
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    return env


def measured_env(home: Path) -> dict[str, str]:
    """Hermetic environment for the timed commands: no PIP_* settings, no config files."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIP_", "PYTHON")) and k not in ("VIRTUAL_ENV",)
    }
    env.update(
        {
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_NO_INPUT": "1",
            "HOME": str(home),
            "XDG_STATE_HOME": str(home / "state"),
            "XDG_CACHE_HOME": str(home / "cache"),
        }
    )
    return env


def run(cmd: Sequence[str | Path], what: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [str(part) for part in cmd], capture_output=True, text=True, env=env, check=False
    )
    if result.returncode != 0:
        raise BenchError(f"{what} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result.stdout


class TreeRss:
    """Samples the summed VmRSS of a process and its descendants until stopped."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, sum(_rss(pid) for pid in _tree(self.pid)))
            self._stop.wait(0.01)


def _tree(pid: int) -> list[int]:
    pids, pending = [], [pid]
    while pending:
        current = pending.pop()
        pids.append(current)
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        pending.extend(int(child) for child in children)
    return pids


def _rss(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def measure(cmd: Sequence[str | Path], env: dict[str, str]) -> Run:
    """Wall time, this child's own peak RSS (``os.wait4``: the child and the children it reaped,
    not the benchmark's other children), and the sampled peak of their sum."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            [str(part) for part in cmd], stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env
        )
        sampler = TreeRss(process.pid) if sys.platform.startswith("linux") else None
        _pid, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        rss_sum = sampler.stop() if sampler is not None else 0
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: KiB on Linux, bytes on macOS
    max_rss = usage.ru_maxrss * scale
    return Run(
        seconds,
        usage.ru_utime + usage.ru_stime,
        max_rss,
        max(rss_sum, max_rss),
        process.returncode,
        stdout.decode(errors="replace"),
        stderr.decode(errors="replace"),
    )


def make_venv(
    root: Path, name: str, python: str, pip_wheel: Path, guard_wheel: Path | None
) -> Path:
    path = root / name
    env = install_env()
    run([python, "-m", "venv", "--without-pip", path], f"creating venv {name}", env)
    venv_python = path / "bin" / "python"
    pip_main = f"{pip_wheel}/pip"
    run(
        [venv_python, pip_main, "install", "-q", "--no-index", "--no-deps", pip_wheel],
        f"installing pip into {name}",
        env,
    )
    if guard_wheel is not None:
        run([venv_python, "-m", "pip", "install", "-q", guard_wheel], "installing the guard", env)
    return path


def fetch_pip(dest: Path, version: str) -> Path:
    run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
         "-d", dest, f"pip=={version}"],
        f"downloading pip {version}",
        install_env(),
    )  # fmt: skip
    wheel = dest / f"pip-{version}-py3-none-any.whl"
    if not wheel.is_file():
        raise BenchError(f"pip download did not produce {wheel.name}")
    return wheel


def build_guard(dest: Path) -> Path:
    run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", dest, REPO],
        "building the guard wheel",
        install_env(),
    )
    wheels = sorted(dest.glob("pip_cache_guard-*.whl"))
    if len(wheels) != 1:
        raise BenchError(f"expected one guard wheel in {dest}, found {wheels}")
    return wheels[0]


def cache_for(guard_venv: Path, cache_root: Path, count: int, seed: int) -> Cache:
    """The synthetic cache of ``count`` entries under ``cache_root``: reused when a complete one
    of this generator is there (its description file is written last), else written anew."""
    path = cache_root / f"cache-{count}-s{seed}"
    description = cache_root / f"cache-{count}-s{seed}.json"
    try:
        known = json.loads(description.read_text())
        if known.pop("generator") == GENERATOR_VERSION:
            return Cache(path, **known)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    description.unlink(missing_ok=True)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    print(f"writing a {count:,}-entry cache to {path} ...", file=sys.stderr, flush=True)
    script = cache_root / "generate.py"
    script.write_text(GENERATOR)
    started = time.perf_counter()
    out = run(
        [guard_venv / "bin" / "python", script, path, count, seed],
        f"generating {count} entries",
        install_env(),
    )
    print(f"  written in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    written = json.loads(out)
    description.write_text(json.dumps({"generator": GENERATOR_VERSION, **written}))
    return Cache(path, **written)


def commands(pip_venv: Path, guard_venv: Path, cache: Path) -> dict[str, list[str | Path]]:
    verify = [guard_venv / "bin" / "pip-cache-guard", "verify", "--cache-dir", cache]
    return {
        PIP_INFO: [pip_venv / "bin" / "python", "-m", "pip", "cache", "info", "--cache-dir", cache],
        VERIFY: verify,
        VERIFY_JSON: [*verify, "--json"],
    }


def check_outputs(results: dict[str, Run], cache: Cache) -> None:
    """Each tool must have done its whole job, or its numbers mean nothing."""
    pip = results[PIP_INFO]
    files = f"Number of HTTP files: {cache.files}"
    if pip.returncode != 0 or files not in pip.stdout:
        raise BenchError(f"pip cache info did not say {files!r}:\n{pip.stdout}{pip.stderr}")
    text = results[VERIFY]
    expected = f"checked {cache.entries} HTTP cache entries"
    if text.returncode != 1 or expected not in text.stderr:
        raise BenchError(f"verify exited {text.returncode}, expected 1 and {expected!r}:\n"
                         f"{text.stdout}{text.stderr}")  # fmt: skip
    verify = results[VERIFY_JSON]
    if verify.returncode != 1:
        raise BenchError(f"verify --json exited {verify.returncode}:\n{verify.stderr}")
    report = json.loads(verify.stdout)
    found = len(report["problems"])
    if report["entries"] != cache.entries or found != cache.damaged:
        raise BenchError(
            f"verify saw {report['entries']} entries and {found} problems; "
            f"expected {cache.entries} and {cache.damaged}"
        )


def time_side_by_side(
    cmds: dict[str, list[str | Path]], env: dict[str, str], rounds: int
) -> dict[str, Series]:
    series = {name: Series(name) for name in cmds}
    for cmd in cmds.values():
        measure(cmd, env)  # warm-up: the page cache, .pyc files
    names = list(cmds)
    for number in range(rounds):
        shift = number % len(names)  # each goes first in turn
        for name in names[shift:] + names[:shift]:
            series[name].runs.append(measure(cmds[name], env))
    return series


def mib(size: float) -> str:
    return f"{size / MIB:,.1f} MiB"


def parse_sizes(text: str) -> list[int]:
    return sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()})


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=parse_sizes, default=[20_000, 100_000],
                        help="entries of each cache, comma-separated")  # fmt: skip
    parser.add_argument("--million", action="store_true", help="add a 1,000,000-entry cache "
                        "(~5 min and ~9 GB of disk the first time)")  # fmt: skip
    parser.add_argument(
        "--time-at",
        type=parse_sizes,
        default=[100_000],
        help="sizes at which the times are compared (each must be in --sizes)",
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cache-root", type=Path,
                        default=Path(tempfile.gettempdir()) / "pcg-verify-bench-caches",
                        help="where the synthetic caches are kept between runs")  # fmt: skip
    parser.add_argument("--python", default=sys.executable, help="interpreter for the venvs")
    parser.add_argument("--pip", default=PIP_VERSION, help="pip version of the venvs")
    parser.add_argument("--wheel", type=Path, help="a prebuilt guard wheel")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the venvs' temporary directory")
    args = parser.parse_args(argv)
    if args.million:
        args.sizes = sorted({*args.sizes, 1_000_000})
    if not set(args.time_at) <= set(args.sizes):
        parser.error("every --time-at size must be one of --sizes")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="pcg-verify-bench-"))
    try:
        return benchmark(args, tmp)
    except BenchError as exc:
        print(f"verify benchmark: could not run: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def benchmark(args: argparse.Namespace, tmp: Path) -> int:
    print(f"setting up (wheel, two venvs with pip {args.pip}) ...", file=sys.stderr, flush=True)
    guard_wheel = args.wheel or build_guard(tmp / "dist")
    pip_wheel = fetch_pip(tmp / "wheelhouse", args.pip)
    pip_venv = make_venv(tmp, "pip", args.python, pip_wheel, None)
    guard_venv = make_venv(tmp, "guard", args.python, pip_wheel, guard_wheel)
    env = measured_env(tmp / "home")
    (tmp / "home").mkdir()
    args.cache_root.mkdir(parents=True, exist_ok=True)
    caches = {size: cache_for(guard_venv, args.cache_root, size, args.seed) for size in args.sizes}

    memory: dict[int, dict[str, Run]] = {}
    timed: dict[int, dict[str, Series]] = {}
    for count, cache in caches.items():
        cmds = commands(pip_venv, guard_venv, cache.path)
        print(f"measuring at {count:,} entries ...", file=sys.stderr, flush=True)
        measure(cmds[VERIFY], env)  # warm-up: the page cache
        memory[count] = {name: measure(cmd, env) for name, cmd in cmds.items()}
        check_outputs(memory[count], cache)
        if count in args.time_at:
            print(f"  timing {args.rounds} rounds ...", file=sys.stderr, flush=True)
            timed[count] = time_side_by_side(cmds, env, args.rounds)
            check_outputs({name: s.runs[-1] for name, s in timed[count].items()}, cache)

    version_code = "import sys; print(sys.version.split()[0])"
    python_version = run([guard_venv / "bin" / "python", "-c", version_code], "version", env)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print()
    print(f"verify at scale: pip {args.pip}, Python {python_version.strip()}, "
          f"{os.cpu_count()} cores, load {load:.2f} at the end, warm page cache, "
          f"caches in {args.cache_root}")  # fmt: skip
    print("  peak RSS: largest process (exact) / sum over its processes (sampled every 10 ms)")
    print(f"  {'entries':>9} {'files':>10}  {PIP_INFO:<22}{VERIFY:<25}{VERIFY_JSON:<22}")
    for count, runs in memory.items():
        cells = [f"{mib(runs[name].max_rss)}/{runs[name].max_rss_sum / MIB:.1f}" for name in runs]
        once = runs[VERIFY].seconds / runs[PIP_INFO].seconds
        print(f"  {count:>9,} {caches[count].files:>10,}  {cells[0]:<22}{cells[1]:<25}"
              f"{cells[2]:<22}(one run: {runs[PIP_INFO].seconds:.2f} s vs "
              f"{runs[VERIFY].seconds:.2f} s, {once:.2f}x)")  # fmt: skip
    verify_peaks = {count: max(runs[VERIFY].max_rss_sum, runs[VERIFY_JSON].max_rss_sum)
                    for count, runs in memory.items()}  # fmt: skip
    smallest, largest = min(verify_peaks), max(verify_peaks)
    growth = verify_peaks[largest] - verify_peaks[smallest]
    flat = growth <= FLAT_MEMORY_BYTES
    under = max(verify_peaks.values()) <= MEMORY_BUDGET
    print(
        f"  verify memory: {'flat' if flat else 'GROWS'}, {growth / MIB:+.1f} MiB from "
        f"{smallest:,} to {largest:,} entries (allowed {FLAT_MEMORY_BYTES / MIB:+.0f}); peak "
        f"{mib(max(verify_peaks.values()))} ({'under' if under else 'OVER'} "
        f"{mib(MEMORY_BUDGET)})"
    )
    fast = True
    for count, series in timed.items():
        pip_s = series[PIP_INFO]
        print(f"\n  times at {count:,} entries, {args.rounds} rotating rounds:")
        print(f"    {'command':<26}{'median':>9}{'min':>9}{'max':>9}{'CPU':>9}")
        for s in series.values():
            print(f"    {s.name:<26}{s.median:>8.3f}s{min(s.times):>8.3f}s{max(s.times):>8.3f}s"
                  f"{s.cpu_median:>8.3f}s")  # fmt: skip
        for name in (VERIFY, VERIFY_JSON):
            ratio = series[name].median / pip_s.median
            per_round = statistics.median([v / p for v, p in zip(series[name].times, pip_s.times)])
            fast = fast and ratio <= TIME_BUDGET
            cpu_ratio = series[name].cpu_median / pip_s.cpu_median
            print(f"    ratio {name} / pip cache info at {count:,}: {ratio:.2f} (median of "
                  f"per-round ratios {per_round:.2f}; CPU time {cpu_ratio:.2f}); budget <= "
                  f"{TIME_BUDGET:.2f}")  # fmt: skip
    passed = flat and under and fast
    print(f"\nverdict: {'PASS' if passed else 'FAIL'}: memory {'flat' if flat else 'grows'} and "
          f"{'under' if under else 'over'} {mib(MEMORY_BUDGET)}; time "
          f"{'within' if fast else 'over'} {TIME_BUDGET:.2f}x pip cache info")  # fmt: skip
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
