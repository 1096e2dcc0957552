"""Interpreters, pip versions and the venvs that pair them, with or without the guard.

A venv is created ``--without-pip`` and gets exactly the requested pip by running that pip's own
wheel (``python pip-X.whl/pip install --no-index pip-X.whl``): no bundled pip to upgrade, no
network for that step, and every pip version installs the same way. The guard, when asked for,
is installed from the wheel built once per session, with its dependencies from the registry
(the machine's normal pip configuration applies to that install only).
"""

from __future__ import annotations

import functools
import glob
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import pytest
from _pytest.mark import ParameterSet

from .runner import hermetic_env

DEFAULT_PYTHON = "3.11"
SETUP_TIMEOUT = 600.0
# Every pip of the suite that starts on each of the newest Pythons (in CI Debian's builds, run in a
# chroot by .ci/pythons): pip 21.3.1 needs pkgutil.ImpImporter, gone in 3.12; on 3.15 pips before
# 25.2 fail at start. The table in docs/pips-and-pythons.md ("Python 3.14 and 3.15") is this one.
NEW_PYTHON_PIPS = {
    "3.14": ("23.2.1", "23.3.2", "24.0", "25.1.1", "25.3", "26.1", "26.2", "26.3"),
    "3.15": ("25.2", "25.3", "26.1", "26.2", "26.3"),
}
# Where interpreters are looked for after pyenv and PATH (a chroot's or a distribution's).
SYSTEM_BIN_DIRS = ("/usr/local/bin", "/usr/bin")


@dataclass(frozen=True)
class Venv:
    """A ready venv. ``python`` is its interpreter; run pip as ``python -m pip``."""

    path: Path
    python: Path
    base_python: str
    python_version: tuple[int, int]
    pip_version: str
    guard: bool


def _version_key(path: str) -> tuple[int, ...]:
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", path)
    return tuple(int(part) for part in match.groups()) if match else (0,)


@functools.cache
def _locate_python(version: str) -> str | None:
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    pattern = os.path.join(pyenv_root, "versions", f"{version}.*", "bin", f"python{version}")
    found = sorted(glob.glob(pattern), key=_version_key)
    if found:
        return found[-1]
    if shutil.which("pyenv"):
        result = subprocess.run(
            ["pyenv", "prefix", version], capture_output=True, text=True, check=False
        )
        candidate = Path(result.stdout.strip()) / "bin" / f"python{version}"
        if result.returncode == 0 and candidate.is_file():
            return str(candidate)
    search = os.pathsep.join([os.environ.get("PATH", os.defpath), *SYSTEM_BIN_DIRS])
    return shutil.which(f"python{version}", path=search)


def find_python(version: str) -> str:
    """Path of a real CPython ``version`` ("3.9" ... "3.15"); skips the calling test if absent.

    Any interpreter found: pyenv's first (the machine's 3.9-3.13 live there, not all on PATH),
    then PATH, then the system's bin directories.
    """
    path = _locate_python(version)
    if path is None:
        pytest.skip(f"Python {version} is not installed (looked in pyenv, PATH and /usr)")
    return path


def new_python_params(pips: Collection[str] | None = None) -> list[ParameterSet]:
    """A ``(python, pip)`` param, id ``py3.14-pip26.3``, for each pair of ``NEW_PYTHON_PIPS``
    (only those of ``pips`` when given)."""
    return [
        pytest.param(python, pip, id=f"py{python}-pip{pip}")
        for python, runs in NEW_PYTHON_PIPS.items()
        for pip in runs
        if pips is None or pip in pips
    ]


@functools.cache
def python_version(python: str) -> tuple[int, int]:
    """``(major, minor)`` of an interpreter, asked from the interpreter itself."""
    out = subprocess.run(
        [python, "-c", "import sys; print(*sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return int(out[0]), int(out[1])


def _requires_python(wheel: Path) -> str | None:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        for line in archive.read(name).decode().splitlines():
            if line.startswith("Requires-Python:"):
                return line.partition(":")[2].strip()
            if not line:
                break
    return None


def _python_allowed(spec: str, version: tuple[int, int]) -> bool:
    try:
        from packaging.specifiers import SpecifierSet
    except ImportError:  # pragma: no cover - pip always has a copy
        from pip._vendor.packaging.specifiers import SpecifierSet
    return SpecifierSet(spec).contains(f"{version[0]}.{version[1]}.0", prereleases=True)


def _run(cmd: list[str], env: dict[str, str] | None = None) -> None:
    """Run a setup command; on failure, fail loudly with its output."""
    result = subprocess.run(
        cmd, capture_output=True, text=True, env=env, timeout=SETUP_TIMEOUT, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"command failed ({result.returncode}): {' '.join(cmd)}\n"
            f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
        )


def _install_env() -> dict[str, str]:
    """The machine's environment (normal pip config) minus anything that steers the guard."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_CACHE_GUARD")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    return env


def fetch_pip_wheel(version: str, wheelhouse: Path) -> Path:
    """The wheel of ``pip==version`` in ``wheelhouse``, downloaded from the registry once."""
    existing = wheelhouse / f"pip-{version}-py3-none-any.whl"
    if existing.is_file():
        return existing
    wheelhouse.mkdir(parents=True, exist_ok=True)
    _run(
        [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--ignore-requires-python", "-d", str(wheelhouse), f"pip=={version}",
        ],
        env=_install_env(),
    )  # fmt: skip
    if not existing.is_file():
        raise RuntimeError(f"pip download did not produce {existing.name}")
    return existing


def build_guard_wheel(repo: Path, dest: Path) -> Path:
    """Build the pip-cache-guard wheel from the source tree ``repo`` into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(dest), str(repo)],
        env=_install_env(),
    )
    wheels = sorted(dest.glob("pip_cache_guard-*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"expected one pip_cache_guard wheel in {dest}, found {wheels}")
    return wheels[0]


class VenvFactory:
    """``factory(python, pip_version, guard)`` -> a ``Venv``, created once per key per session.

    Venvs are shared between tests: treat them as read-only (give each pip run its own cache and
    download dirs). ``guard_wheel`` is called only when a guarded venv is first asked for, so
    tests that never use the guard never build it.
    """

    def __init__(self, root: Path, wheelhouse: Path, guard_wheel: Callable[[], Path]) -> None:
        self._root = root
        self._wheelhouse = wheelhouse
        self._guard_wheel = guard_wheel
        self._venvs: dict[tuple[str, str, bool], Venv] = {}

    def __call__(self, python: str, pip_version: str, guard: bool) -> Venv:
        key = (python, pip_version, guard)
        if key not in self._venvs:
            self._venvs[key] = self._create(python, pip_version, guard)
        return self._venvs[key]

    def pip_wheel(self, pip_version: str) -> Path:
        """The wheel of ``pip==pip_version`` (the one the venvs install), fetched once."""
        return fetch_pip_wheel(pip_version, self._wheelhouse)

    def _create(self, python: str, pip_version: str, guard: bool) -> Venv:
        version = python_version(python)
        pip_wheel = fetch_pip_wheel(pip_version, self._wheelhouse)
        spec = _requires_python(pip_wheel)
        if spec and not _python_allowed(spec, version):
            pytest.skip(f"pip {pip_version} requires Python {spec}, {python} is {version}")

        name = f"py{version[0]}{version[1]}-pip{pip_version}-{'guard' if guard else 'plain'}"
        path = self._root / name
        if path.exists():
            shutil.rmtree(path)
        _run([python, "-m", "venv", "--without-pip", str(path)])
        venv_python = path / "bin" / "python"

        # pip installs itself from its own wheel: offline, no config files, exact version.
        _run(
            [
                str(venv_python), f"{pip_wheel}/pip", "install", "--no-index", "--no-deps",
                "--no-cache-dir", str(pip_wheel),
            ],
            env=hermetic_env(),
        )  # fmt: skip
        if guard:
            _run(
                [str(venv_python), "-m", "pip", "install", str(self._guard_wheel())],
                env=_install_env(),
            )
        return Venv(path, venv_python, python, version, pip_version, guard)


def make_tool_venv(
    path: Path, python: str, packages: list[str], guard_wheel: Path | None, with_pip: bool = True
) -> Venv:
    """A venv holding a tool from the registry, e.g. Poetry, and the guard wheel when given: the
    guard "in the tool's own environment". ``with_pip=False``: no pip in it at all (installed
    from outside with ``pip --python``), as in an environment where only CacheControl is."""
    if path.exists():
        shutil.rmtree(path)
    _run([python, "-m", "venv", str(path)] + ([] if with_pip else ["--without-pip"]))
    venv_python = path / "bin" / "python"
    wheel = [str(guard_wheel)] if guard_wheel is not None else []
    installer = [str(venv_python), "-m", "pip"]
    if not with_pip:
        installer = [sys.executable, "-m", "pip", "--python", str(venv_python)]
    _run([*installer, "install", "-q", *packages, *wheel], env=_install_env())
    pip_version = subprocess.run(
        [str(venv_python), "-c", "import pip; print(pip.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return Venv(path, venv_python, python, python_version(python), pip_version, bool(wheel))
