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
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from support.index import LoopbackIndex  # noqa: E402  (the tests' own loopback index)
from support.wheels import build_default_set, build_payload_sdist  # noqa: E402


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
    tmp = Path(tempfile.mkdtemp(prefix="pcg-pip-install-"))
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
        pythons["compared guard on"] = _venv(args, tmp / "compared", args.compare_wheel)
    packages = build_default_set(tmp / "wheels")
    sdist = build_payload_sdist(tmp / "sdists", "guardtest-built")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp / "home"),
        "XDG_STATE_HOME": str(tmp / "state"),
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
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
            subprocess.run(command(python, projects), env=env, check=True)  # fill the cache
            for _ in range(args.rounds):
                for setting in random.sample(list(pythons), len(pythons)):
                    run_env = dict(env, PIP_CACHE_GUARD="0") if setting == "guard off" else env
                    shutil.rmtree(target, ignore_errors=True)
                    used = _children_cpu()
                    started = time.perf_counter()
                    subprocess.run(command(pythons[setting], projects), env=run_env, check=True)
                    times.setdefault((label, setting), []).append(time.perf_counter() - started)
                    cpu.setdefault((label, setting), []).append(_children_cpu() - used)
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


def _children_cpu() -> float:
    """CPU seconds (user + system) used so far by this process's waited-for children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    sys.exit(main())
