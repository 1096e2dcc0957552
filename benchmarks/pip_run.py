"""What the guard costs inside pip: the session import and a warm-cache `pip download`.

    python benchmarks/pip_run.py [--rounds 15] [--pip 26.3] [--compare-wheel OTHER.whl]

Builds the guard wheel, makes one venv with that pip and the guard, serves six small wheels from
the tests' loopback index (PyPI-like cache headers), fills a cache once, then times the same
`pip download` side by side, interleaved in random order, with `PIP_CACHE_GUARD=0` (kill switch:
nothing patched, wrapt not imported) and without it; then the same for
`import pip._internal.network.session` alone (what every networked pip command does, where the
guard patches pip and imports wrapt), as a whole process and timed inside the process (the import
alone, without the start and exit of Python: its wall time, and its CPU time, which a busy shared
machine disturbs far less). `--compare-wheel` adds another build of the guard
(say, main's) in a venv of its own, timed in the same interleaved rounds, so that the cost of a
change is read against the guard before it. Prints medians and the ratios. Not a test: it judges
nothing and always exits 0 when it could measure.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from support.index import LoopbackIndex  # noqa: E402  (the tests' own loopback index)
from support.wheels import build_default_set  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--pip", default="26.3")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument(
        "--compare-wheel",
        type=Path,
        help="another build of the guard (e.g. main's) timed in the same run, in its own venv",
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pcg-pip-run-"))
    try:
        return measure(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _venv(args: argparse.Namespace, path: Path, wheel: Path) -> Path:
    subprocess.run([args.python, "-m", "venv", path], check=True)
    python = path / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", f"pip=={args.pip}", wheel], check=True)
    return python


def measure(args: argparse.Namespace, tmp: Path) -> int:
    wheel_dir = tmp / "guard"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", wheel_dir, REPO],
        check=True,
    )
    python = _venv(args, tmp / "venv", next(wheel_dir.glob("*.whl")))
    pythons = {"guard off": python, "guard on": python}  # the kill switch tells them apart
    if args.compare_wheel is not None:
        pythons["compared on"] = _venv(args, tmp / "compared", args.compare_wheel)
    packages = build_default_set(tmp / "wheels")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp / "home"),
        "XDG_STATE_HOME": str(tmp / "state"),
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    with LoopbackIndex(w.path for w in packages.values()) as index:
        download_args = [
            "-m", "pip", "download", "-q", "--no-deps",
            "--cache-dir", str(tmp / "cache"), "--index-url", index.url,
            "--trusted-host", "127.0.0.1", "-d", str(tmp / "dl"), *packages,
        ]  # fmt: skip
        subprocess.run([python, *download_args], env=env, check=True)  # fill the cache
        [download] = interleaved(pythons, download_args, env, args.rounds, before=lambda: (
            shutil.rmtree(tmp / "dl", ignore_errors=True)))  # fmt: skip
    [session] = interleaved(pythons, ["-c", SESSION_IMPORT], env, args.rounds * 4)
    timed_inside = ["-c", TIMED_SESSION_IMPORT]
    wall, cpu = interleaved(pythons, timed_inside, env, args.rounds * 4, timed_by_child=True)
    print(f"pip {args.pip}, medians of interleaved runs, guard off (PIP_CACHE_GUARD=0) / on:")
    show(f"`{SESSION_IMPORT}` ({args.rounds * 4} rounds, the whole process)", session)
    alone = f"`{SESSION_IMPORT}` alone, timed inside the process ({args.rounds * 4} rounds)"
    show(f"{alone}: wall time", wall)
    show(f"{alone}: CPU time", cpu)
    show(f"warm-cache `pip download` of {len(packages)} wheels ({args.rounds} rounds)", download)
    return 0


SESSION_IMPORT = "import pip._internal.network.session"
# The import alone, without the process's start and exit (less noise from the machine): its wall
# time and its CPU time.
TIMED_SESSION_IMPORT = (
    f"import time; wall, cpu = time.perf_counter(), time.process_time(); {SESSION_IMPORT}; "
    "print(time.perf_counter() - wall, time.process_time() - cpu)"
)


def interleaved(
    pythons: dict[str, Path],
    arguments: list[str],
    env: dict[str, str],
    rounds: int,
    before: Callable[[], object] = list,
    timed_by_child: bool = False,
) -> list[dict[str, list[float]]]:
    """Wall times of each Python given ``arguments``, by setting ("guard off": the kill switch),
    alternating in random order (with ``timed_by_child``: the seconds the command prints, one
    list of times for each number it prints)."""
    times: list[dict[str, list[float]]] = []
    for _ in range(rounds):
        for setting in random.sample(list(pythons), len(pythons)):
            run_env = dict(env, PIP_CACHE_GUARD="0") if setting == "guard off" else env
            before()
            started = time.perf_counter()
            command = [str(pythons[setting]), *arguments]
            child = subprocess.run(command, env=run_env, check=True, capture_output=timed_by_child)
            took = child.stdout.split() if timed_by_child else [time.perf_counter() - started]
            times += [{key: [] for key in pythons} for _ in range(len(took) - len(times))]
            for samples, seconds in zip(times, took):
                samples[setting].append(float(seconds))
    return times


def show(what: str, times: dict[str, list[float]]) -> None:
    off = statistics.median(times["guard off"])
    print(f"  {what}")
    for setting in list(times)[1:]:
        on = statistics.median(times[setting])
        print(
            f"    off {off * 1e3:7.1f} ms   {setting} {on * 1e3:7.1f} ms   ratio {on / off:.3f}"
            f"  ({(on - off) * 1e3:+.1f} ms)"
        )


if __name__ == "__main__":
    sys.exit(main())
