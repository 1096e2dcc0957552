"""What the guard costs a warm-cache `pip install`: wheels from the HTTP cache, and a built wheel.

    python benchmarks/pip_install.py [--rounds 15] [--pip 26.3] [--compare-wheel OTHER.whl]

Builds the guard wheel, makes one venv with that pip and the guard, serves the tests' six small
wheels and one sdist (built by pip with its in-tree backend) from the tests' loopback index, fills
a cache once, then times two warm-cache installs into a fresh `--target` directory, each side by
side with `PIP_CACHE_GUARD=0` (kill switch: nothing patched, wrapt not imported), interleaved in
random order:

- `pip install` of the six wheels (HTTP cache hits: every hit's metadata is judged);
- `pip install` of the sdist's project (a hit in the cache's `wheels/`: the built wheel is judged).

`--compare-wheel` adds another build of the guard (say, main's) in a venv of its own, timed in the
same interleaved rounds, so that the cost of a change is read against the guard before it.

Prints medians and ratios of wall time and of the child's CPU time (user + system, from
`getrusage`), which a busy shared machine disturbs far less. Not a test: it judges nothing and
exits 0 when it could measure.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import guarded_pips  # first: it puts the tests' `support` package on the path

from support.index import LoopbackIndex  # (the tests' own loopback index)
from support.wheels import build_default_set, build_payload_sdist


def main() -> int:
    return guarded_pips.run(__doc__.splitlines()[0], "pcg-pip-install-", measure)


def measure(args: argparse.Namespace, tmp: Path) -> int:
    pythons = guarded_pips.pythons(args, tmp)
    python = pythons["guard on"]
    packages = build_default_set(tmp / "wheels")
    sdist = build_payload_sdist(tmp / "sdists", "guardtest-built")
    target = tmp / "target"
    scenarios = {
        f"{len(packages)} wheels from the HTTP cache": list(packages),
        "1 wheel pip built, from the cache's wheels/": [sdist.project],
    }
    with LoopbackIndex([*(w.path for w in packages.values()), sdist.path]) as index:

        def command(python: Path, projects: list[str]) -> list[str]:
            return [
                str(python), "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                "--cache-dir", str(tmp / "cache"), "--index-url", index.url,
                "--trusted-host", "127.0.0.1", *projects,
            ]  # fmt: skip

        times: dict[tuple[str, str], list[float]] = {}
        cpu: dict[tuple[str, str], list[float]] = {}
        for label, projects in scenarios.items():
            shutil.rmtree(target, ignore_errors=True)
            fill = guarded_pips.environment(tmp, "guard on")
            subprocess.run(command(python, projects), env=fill, check=True)  # fill the cache
            for _ in range(args.rounds):
                for setting in random.sample(list(pythons), len(pythons)):
                    run_env = guarded_pips.environment(tmp, setting)
                    shutil.rmtree(target, ignore_errors=True)
                    used = guarded_pips.children_cpu()
                    started = time.perf_counter()
                    subprocess.run(command(pythons[setting], projects), env=run_env, check=True)
                    times.setdefault((label, setting), []).append(time.perf_counter() - started)
                    cpu.setdefault((label, setting), []).append(guarded_pips.children_cpu() - used)
    print(f"warm-cache `pip install --target`, pip {args.pip}, {args.rounds} rounds, medians")
    for label in scenarios:
        print(f"  {label}")
        for name, samples in (("wall", times), ("cpu ", cpu)):
            off = statistics.median(samples[(label, "guard off")])
            for setting in list(pythons)[1:]:
                on = statistics.median(samples[(label, setting)])
                print(
                    f"    {name}: guard off {off * 1e3:7.1f} ms, {setting} {on * 1e3:7.1f} ms, "
                    f"ratio {on / off:.3f} ({(on - off) * 1e3:+.1f} ms per pip run)"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
