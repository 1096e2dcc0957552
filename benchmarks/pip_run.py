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
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import guarded_pips  # first: it puts the tests' `support` package on the path

from support.index import LoopbackIndex  # (the tests' own loopback index)
from support.wheels import build_default_set


def main() -> int:
    return guarded_pips.run(__doc__.splitlines()[0], "pcg-pip-run-", measure)


def measure(args: argparse.Namespace, tmp: Path) -> int:
    pythons = guarded_pips.pythons(args, tmp)
    python = pythons["guard on"]
    packages = build_default_set(tmp / "wheels")
    with LoopbackIndex(w.path for w in packages.values()) as index:
        download_args = [
            "-m", "pip", "download", "-q", "--no-deps",
            "--cache-dir", str(tmp / "cache"), "--index-url", index.url,
            "--trusted-host", "127.0.0.1", "-d", str(tmp / "dl"), *packages,
        ]  # fmt: skip
        subprocess.run(
            [python, *download_args], env=guarded_pips.environment(tmp, "guard on"), check=True
        )  # fill the cache
        [download] = interleaved(pythons, download_args, tmp, args.rounds, before=lambda: (
            shutil.rmtree(tmp / "dl", ignore_errors=True)))  # fmt: skip
    [session] = interleaved(pythons, ["-c", SESSION_IMPORT], tmp, args.rounds * 4)
    timed_inside = ["-c", TIMED_SESSION_IMPORT]
    wall, cpu = interleaved(pythons, timed_inside, tmp, args.rounds * 4, timed_by_child=True)
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
    tmp: Path,
    rounds: int,
    before: Callable[[], object] = list,
    timed_by_child: bool = False,
    child_cpu: bool = False,
) -> list[dict[str, list[float]]]:
    """Wall times of each Python given ``arguments``, by setting ("guard off": the kill switch),
    alternating in random order (with ``timed_by_child``: the seconds the command prints, one
    list of times for each number it prints; with ``child_cpu``: then the child's CPU time)."""
    times: list[dict[str, list[float]]] = []
    for _ in range(rounds):
        for setting in random.sample(list(pythons), len(pythons)):
            run_env = guarded_pips.environment(tmp, setting)
            before()
            used, started = guarded_pips.children_cpu(), time.perf_counter()
            command = [str(pythons[setting]), *arguments]
            child = subprocess.run(command, env=run_env, check=True, capture_output=timed_by_child)
            took = child.stdout.split() if timed_by_child else [time.perf_counter() - started]
            took += [guarded_pips.children_cpu() - used] if child_cpu else []
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
