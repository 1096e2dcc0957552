#!/usr/bin/env python3
"""``pip-cache-guard verify`` against ``pip cache info`` on a 20,000-entry cache, side by side.

Issue 4 asks that verify check a 20,000-entry cache in less time than ``pip cache info`` takes
merely to count it (goal: half), with memory that does not grow with the number of entries.

1. Builds the guard wheel from this checkout (or takes ``--wheel``), makes two venvs with pip 26.3:
   "pip" (pip alone) and "guard" (pip and the guard wheel with its dependencies).
2. Inside the guard venv, writes genuine ``http-v2`` caches with CacheControl's own ``Serializer``
   (the code pip vendors): ``cc=4,`` + msgpack metadata of a PyPI-like 200 response per entry, and a
   ``.body`` beside it, log-uniformly 100 B to ``--max-body`` (default 100 kB). Half the entries are
   index pages, half wheels, each with its own URL, ETag and Content-Length. A few damaged files
   are added (garbage, ``cc=2``, short bodies, orphan bodies, old ``*.tmp`` leftovers).
3. Times ``pip cache info --cache-dir X`` and ``pip-cache-guard verify --cache-dir X --json``,
   alternating which goes first, for ``--rounds`` rounds after one untimed warm-up each (so both
   read from the page cache). Wall time per run from ``perf_counter`` around the child process.
4. Peak RSS of each child comes from ``os.wait4`` (that child's own ``ru_maxrss``), at
   ``--small-entries`` (5,000) and ``--entries`` (20,000) entries.

Standard library only; needs the package registry for the venvs. Exit status: 0 when verify's
median is below pip cache info's, 1 when not, 2 when the benchmark could not run.

    python benchmarks/verify.py [--entries 20000] [--small-entries 5000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PIP_VERSION = "26.3"
FLAT_MEMORY_BYTES = 4 * 1024 * 1024  # verify may grow this much from 5k to 20k entries

# Runs inside the guard venv (which has cachecontrol, requests, urllib3 as the guard's
# dependencies): writes `count` genuine entries plus the damaged extras, prints a summary line.
GENERATOR = r"""
import hashlib, io, math, os, random, sys, time
import requests, urllib3
from cachecontrol.serialize import Serializer

root, count, seed, max_body = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
http = os.path.join(root, "http-v2")
serializer = Serializer()
pool = rng.randbytes(max_body + 4096)
DATE = "Sat, 01 Nov 2025 10:00:00 GMT"


def place(url):
    digest = hashlib.sha224(url.encode()).hexdigest()
    directory = os.path.join(http, *digest[:5])
    os.makedirs(directory, exist_ok=True)
    return os.path.join(directory, digest)


def entry(number):
    size = int(math.exp(rng.uniform(math.log(100), math.log(max_body))))
    start = rng.randrange(0, len(pool) - size)
    body = pool[start:start + size]
    name = f"project-{number:06d}"
    etag = '"' + hashlib.md5(f"{seed}-{number}".encode()).hexdigest() + '"'
    if number % 2:
        digest = hashlib.sha256(name.encode()).hexdigest()
        url = (f"https://files.pythonhosted.org/packages/{digest[:2]}/{digest[2:4]}/"
               f"{digest[4:]}/{name.replace('-', '_')}-1.0-py3-none-any.whl")
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size),
                   "ETag": etag, "Last-Modified": DATE, "Date": DATE, "Age": "3600",
                   "Accept-Ranges": "bytes", "X-Served-By": "cache-bench-1", "X-Cache": "HIT",
                   "Cache-Control": "max-age=365000000, immutable, public"}
        request_headers = {"Accept-Encoding": "identity"}
    else:
        url = f"https://pypi.org/simple/{name}/"
        headers = {"Content-Type": "application/vnd.pypi.simple.v1+json", "Content-Length":
                   str(size), "ETag": etag, "Date": DATE, "Cache-Control": "max-age=600, public",
                   "Vary": "Accept-Encoding, Accept", "X-PyPI-Last-Serial": str(number)}
        request_headers = {"Accept-Encoding": "identity", "Accept":
                           "application/vnd.pypi.simple.v1+json, text/html;q=0.01"}
    request = requests.Request("GET", url, headers=request_headers).prepare()
    response = urllib3.HTTPResponse(body=io.BytesIO(b""), headers=headers, status=200,
                                    version=11, reason="OK", preload_content=False,
                                    decode_content=False)
    path = place(url)
    with open(path, "wb") as stream:
        stream.write(serializer.dumps(request, response, b""))
    with open(path + ".body", "wb") as stream:
        stream.write(body)
    return path


paths = [entry(number) for number in range(count)]
damaged = 0
for path in rng.sample(paths, 4):  # garbage metadata
    with open(path, "wb") as stream:
        stream.write(rng.randbytes(300).replace(b"cc=", b"xx="))
    damaged += 1
for path in rng.sample(paths, 2):  # another serializer version
    data = open(path, "rb").read()
    open(path, "wb").write(b"cc=2," + data[5:])
    damaged += 1
for path in rng.sample(paths, 4):  # short bodies (a full disk)
    body = path + ".body"
    size = os.path.getsize(body)
    if size > 1:
        os.truncate(body, size // 2)
        damaged += 1
for number in range(3):  # bodies without metadata, old tmp files
    orphan = place(f"https://pypi.org/simple/orphan-{number}/")
    open(orphan + ".body", "wb").write(pool[:5000])
    leftover = orphan + f"{number}k2j3h.tmp"
    open(leftover, "wb").write(pool[:700])
    old = time.time() - 7200
    os.utime(leftover, (old, old))
    damaged += 2
print(count, damaged)
"""


class BenchError(Exception):
    """A setup step failed; the benchmark cannot say PASS or FAIL."""


@dataclass
class Run:
    seconds: float
    max_rss: int  # bytes
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
    def peak_rss(self) -> int:
        return max(run.max_rss for run in self.runs)


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


def measure(cmd: Sequence[str | Path], env: dict[str, str]) -> Run:
    """Wall time and this child's own peak RSS (``os.wait4``: not the max over all children)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(part) for part in cmd],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    stdout, stderr = process.stdout.read(), process.stderr.read()  # type: ignore[union-attr]
    _pid, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    process.stdout.close()  # type: ignore[union-attr]
    process.stderr.close()  # type: ignore[union-attr]
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return Run(
        seconds,
        usage.ru_maxrss * scale,
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


def generate(guard_venv: Path, root: Path, count: int, seed: int, max_body: int) -> int:
    """Write the cache; return how many damaged files it holds."""
    script = root.parent / f"generate-{root.name}.py"
    script.write_text(GENERATOR)
    out = run(
        [guard_venv / "bin" / "python", script, root, count, seed, max_body],
        f"generating {count} entries",
        install_env(),
    )
    return int(out.split()[1])


def tree_stats(root: Path) -> tuple[int, int]:
    files = size = 0
    for directory, _subdirs, names in os.walk(root):
        for name in names:
            files += 1
            size += os.lstat(os.path.join(directory, name)).st_size
    return files, size


def commands(pip_venv: Path, guard_venv: Path, cache: Path) -> dict[str, list[str | Path]]:
    return {
        "pip cache info": [pip_venv / "bin" / "python", "-m", "pip", "cache", "info",
                           "--cache-dir", cache],
        "pip-cache-guard verify --json": [guard_venv / "bin" / "pip-cache-guard", "verify",
                                          "--cache-dir", cache, "--json"],
    }  # fmt: skip


def check_outputs(results: dict[str, Run], entries: int, damaged: int) -> None:
    """Both tools must have done their job, or the timing means nothing."""
    import json

    pip = results["pip cache info"]
    if pip.returncode != 0 or "Number of HTTP files" not in pip.stdout:
        raise BenchError(f"pip cache info failed:\n{pip.stdout}{pip.stderr}")
    verify = results["pip-cache-guard verify --json"]
    if verify.returncode != 1:
        raise BenchError(f"verify exited {verify.returncode}:\n{verify.stdout}{verify.stderr}")
    report = json.loads(verify.stdout)
    found = len(report["problems"])
    if report["entries"] != entries or found != damaged:
        raise BenchError(
            f"verify saw {report['entries']} entries and {found} problems; "
            f"expected {entries} and {damaged}"
        )


def time_side_by_side(
    cmds: dict[str, list[str | Path]], env: dict[str, str], rounds: int
) -> dict[str, Series]:
    series = {name: Series(name) for name in cmds}
    for cmd in cmds.values():
        measure(cmd, env)  # warm-up: the page cache, pip's .pyc files
    names = list(cmds)
    for number in range(rounds):
        order = names if number % 2 == 0 else names[::-1]  # each goes first in turn
        for name in order:
            series[name].runs.append(measure(cmds[name], env))
    return series


def mb(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--small-entries", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--max-body", type=int, default=100_000, help="largest .body, bytes")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the venvs")
    parser.add_argument("--pip", default=PIP_VERSION, help="pip version of the venvs")
    parser.add_argument("--wheel", type=Path, help="a prebuilt guard wheel")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    return parser.parse_args(argv)


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
    print(f"setting up (wheel, two venvs with pip {args.pip}) ...", file=sys.stderr)
    guard_wheel = args.wheel or build_guard(tmp / "dist")
    pip_wheel = fetch_pip(tmp / "wheelhouse", args.pip)
    pip_venv = make_venv(tmp, "pip", args.python, pip_wheel, None)
    guard_venv = make_venv(tmp, "guard", args.python, pip_wheel, guard_wheel)
    env = measured_env(tmp / "home")
    (tmp / "home").mkdir()

    sizes = {"large": args.entries, "small": args.small_entries}
    caches: dict[str, tuple[Path, int]] = {}
    for label, count in sizes.items():
        print(f"writing {count:,} genuine entries ...", file=sys.stderr)
        root = tmp / f"cache-{label}"
        damaged = generate(guard_venv, root, count, args.seed, args.max_body)
        caches[label] = (root, damaged)

    results: dict[str, dict[str, Series]] = {}
    for label, (root, damaged) in caches.items():
        cmds = commands(pip_venv, guard_venv, root)
        rounds = args.rounds if label == "large" else max(3, args.rounds // 2)
        print(f"timing {label} cache, {rounds} rounds ...", file=sys.stderr)
        series = time_side_by_side(cmds, env, rounds)
        check_outputs({name: s.runs[-1] for name, s in series.items()}, sizes[label], damaged)
        results[label] = series

    large = results["large"]
    pip_s, guard_s = large["pip cache info"], large["pip-cache-guard verify --json"]
    ratio = guard_s.median / pip_s.median
    round_ratios = [g / p for g, p in zip(guard_s.times, pip_s.times)]
    files, size = tree_stats(caches["large"][0])

    version_code = "import sys; print(sys.version.split()[0])"
    python_version = run([guard_venv / "bin" / "python", "-c", version_code], "version", env)
    print()
    print(
        f"verify vs pip cache info: pip {args.pip}, Python {python_version.strip()}, "
        f"{args.entries:,} entries + {caches['large'][1]} damaged files "
        f"({files:,} files, {mb(size)}), warm page cache, {len(pip_s.runs)} alternating rounds"
    )
    header = f"  {'command':<32}{'median':>9}{'min':>9}{'max':>9}{'peak RSS':>12}"
    print(header)
    for s in (pip_s, guard_s):
        print(
            f"  {s.name:<32}{s.median:>8.3f}s{min(s.times):>8.3f}s{max(s.times):>8.3f}s"
            f"{mb(s.peak_rss):>12}"
        )
    print(
        f"  ratio verify / pip cache info: {ratio:.2f} (median of per-round ratios "
        f"{statistics.median(round_ratios):.2f}); required < 1.00, goal <= 0.50"
    )
    small = results["small"]
    print()
    print("  peak RSS by cache size      "
          f"{args.small_entries:>8,} entries {args.entries:>8,} entries   growth")  # fmt: skip
    flat = True
    for name in (pip_s.name, guard_s.name):
        little, big = small[name].peak_rss, large[name].peak_rss
        growth = big - little
        if name == guard_s.name:
            flat = growth <= FLAT_MEMORY_BYTES
        print(f"  {name:<28}{mb(little):>16}{mb(big):>17}{growth / 1e6:>+8.1f} MB")
    print(
        f"  verify memory: {'flat' if flat else 'GROWS'} "
        f"(allowed growth {FLAT_MEMORY_BYTES / 1e6:.1f} MB from {args.small_entries:,} to "
        f"{args.entries:,} entries)"
    )
    faster = guard_s.median < pip_s.median
    goal = "goal met" if ratio <= 0.5 else "goal (half) not met"
    verdict = "PASS" if faster else "FAIL"
    print(f"\nverdict: {verdict}: verify {'faster' if faster else 'NOT faster'} than pip cache "
          f"info ({goal}); memory {'flat' if flat else 'not flat'}")  # fmt: skip
    return 0 if faster else 1


if __name__ == "__main__":
    sys.exit(main())
