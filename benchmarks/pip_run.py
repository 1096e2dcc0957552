"""What the guard costs inside pip: a warm-cache `pip download` with the guard on and off.

    python benchmarks/pip_run.py [--rounds 15] [--pip 26.3]

Builds the guard wheel, makes one venv with that pip and the guard, serves six small wheels from
the tests' loopback index (PyPI-like cache headers), fills a cache once, then times the same
`pip download` side by side, interleaved in random order, with `PIP_CACHE_GUARD=0` (kill switch:
nothing patched, wrapt not imported) and without it. Prints medians and the ratio. Not a test:
it judges nothing and always exits 0 when it could measure.
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
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pcg-pip-run-"))
    try:
        return measure(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def measure(args: argparse.Namespace, tmp: Path) -> int:
    wheel_dir = tmp / "guard"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", wheel_dir, REPO],
        check=True,
    )
    venv = tmp / "venv"
    subprocess.run([args.python, "-m", "venv", venv], check=True)
    python = venv / "bin" / "python"
    wheel = next(wheel_dir.glob("*.whl"))
    subprocess.run([python, "-m", "pip", "install", "-q", f"pip=={args.pip}", wheel], check=True)
    packages = build_default_set(tmp / "wheels")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp / "home"),
        "XDG_STATE_HOME": str(tmp / "state"),
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    with LoopbackIndex(w.path for w in packages.values()) as index:
        command = [
            str(python), "-m", "pip", "download", "-q", "--no-deps",
            "--cache-dir", str(tmp / "cache"), "--index-url", index.url,
            "--trusted-host", "127.0.0.1", "-d", str(tmp / "dl"), *packages,
        ]  # fmt: skip
        subprocess.run(command, env=env, check=True)  # fill the cache
        times: dict[str, list[float]] = {"guard on": [], "guard off": []}
        for _ in range(args.rounds):
            for setting in random.sample(list(times), 2):
                run_env = dict(env, PIP_CACHE_GUARD="0") if setting == "guard off" else env
                shutil.rmtree(tmp / "dl", ignore_errors=True)
                started = time.perf_counter()
                subprocess.run(command, env=run_env, check=True)
                times[setting].append(time.perf_counter() - started)
    on, off = (statistics.median(times[key]) for key in ("guard on", "guard off"))
    print(
        f"warm-cache `pip download` of {len(packages)} wheels, pip {args.pip}, {args.rounds} rounds"
    )
    print(f"  guard off  {off * 1e3:7.1f} ms (median)")
    print(f"  guard on   {on * 1e3:7.1f} ms (median)")
    print(f"  ratio on/off {on / off:.3f}  (+{(on - off) * 1e3:.1f} ms per pip run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
