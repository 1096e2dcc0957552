"""What ``pip_run.py`` and ``pip_install.py`` share: their options, the guard's wheel, the venvs
and the environment, so that both time the same guarded pip against its kill switch (and, with
``--compare-wheel``, against another build of the guard) in the same way."""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the tests' loopback index and wheels (``support``)


def run(
    description: str,
    prefix: str,
    measure: Callable[[argparse.Namespace, Path], int],
    options: Callable[[argparse.ArgumentParser], object] | None = None,
) -> int:
    """Parse the shared options (and the script's own, added by ``options``) and call
    ``measure(args, tmp)`` in a temporary directory."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--pip", default="26.3")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument(
        "--compare-wheel",
        type=Path,
        help="another build of the guard (e.g. main's) timed in the same run, in its own venv",
    )
    if options is not None:
        options(parser)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        return measure(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def pythons(args: argparse.Namespace, tmp: Path) -> dict[str, Path]:
    """The interpreters to time, by setting: "guard off" and "guard on" are one venv with this
    repository's guard (the kill switch tells them apart), "compared on" a venv with
    ``--compare-wheel``'s."""
    wheel_dir = tmp / "guard"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", wheel_dir, REPO],
        check=True,
    )
    python = _venv(args, tmp / "venv", next(wheel_dir.glob("*.whl")))
    found = {"guard off": python, "guard on": python}
    if args.compare_wheel is not None:
        found["compared on"] = _venv(args, tmp / "compared", args.compare_wheel)
    return found


def environment(tmp: Path, setting: str) -> dict[str, str]:
    """A pip run's environment: nothing of the user's config, state or home; the kill switch set
    for "guard off"."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp / "home"),
        "XDG_STATE_HOME": str(tmp / "state"),
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    return dict(env, PIP_CACHE_GUARD="0") if setting == "guard off" else env


def _venv(args: argparse.Namespace, path: Path, wheel: Path) -> Path:
    subprocess.run([args.python, "-m", "venv", path], check=True)
    python = path / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", f"pip=={args.pip}", wheel], check=True)
    return python


def children_cpu() -> float:
    """CPU seconds (user + system) used so far by this process's waited-for children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
