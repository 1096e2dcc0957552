"""The startup file on every Python from 3.9 to 3.15, each a real interpreter (3.14 and 3.15 in CI
are Debian's builds, run in a chroot by ``.ci/pythons``).

We ship one ``.pth`` whose import line site.py runs through Python 3.17, and no PEP 829 ``.start``
file: on 3.15 a ``.start`` makes site.py import ``pkgutil`` and ``re`` at every start (+75 %) and
print a traceback at every start once the package is gone (docs/pips-and-pythons.md, "Python
3.14 and 3.15"). The first test fails the day an interpreter stops running that line (3.18
ignores ``.pth`` import lines), so the move to a ``.start`` file cannot be missed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from support.index import LoopbackIndex
from support.runner import describe, pip_download, run_python
from support.venvs import Venv, VenvFactory, find_python

pytestmark = pytest.mark.e2e

PTH = "pip_cache_guard.pth"
START = "pip_cache_guard.start"
# The newest pip of the suite that starts on each Python (pip 26 needs 3.10).
PYTHONS = [
    pytest.param(python, "25.3" if python == "3.9" else "26.3", id=f"py{python}")
    for python in ("3.9", "3.10", "3.11", "3.12", "3.13", "3.14", "3.15")
]
FINDERS = (
    "import sys; print(sum(bool(getattr(f, '_pip_cache_guard_finder', False))"
    " for f in sys.meta_path), 'wrapt' in sys.modules)"
)
PURELIB = "import sysconfig; print(sysconfig.get_paths()['purelib'])"


@pytest.fixture(scope="module")
def pip_wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("startup-pip-wheels")


def own_venv(tmp_path: Path, wheelhouse: Path, guard_wheel: Path, python: str, pip: str) -> Venv:
    """A guarded venv of this test's own, free to be damaged."""
    factory = VenvFactory(tmp_path / "venvs", wheelhouse, lambda: guard_wheel)
    return factory(find_python(python), pip, guard=True)


def site_packages(venv: Venv) -> Path:
    result = run_python(venv, ["-c", PURELIB])
    assert result.returncode == 0, describe(result)
    return Path(result.stdout.strip())


def doctor_hook_files(venv: Venv, tmp_path: Path) -> list[str]:
    result = run_python(
        venv,
        ["-m", "pip_cache_guard", "doctor", "--json"],
        {"HOME": str(tmp_path / "home"), "XDG_STATE_HOME": str(tmp_path / "state")},
    )
    assert result.returncode in (0, 1), describe(result)
    hook_files: list[str] = json.loads(result.stdout)["hook_files"]
    return hook_files


@pytest.mark.parametrize(("python", "pip"), PYTHONS)
def test_the_pth_import_line_is_what_runs_the_hook_once_and_silently(
    python: str, pip: str, make_venv: VenvFactory, tmp_path: Path
) -> None:
    venv = make_venv(find_python(python), pip, guard=True)
    purelib = site_packages(venv)
    assert (purelib / PTH).is_file() and not (purelib / START).exists()

    # -X dev -W error: a deprecation of .pth import lines (announced for 3.20) fails here too.
    for options in ([], ["-X", "dev", "-W", "error"]):
        started = run_python(venv, [*options, "-c", FINDERS])
        assert started.returncode == 0 and started.stderr == "", describe(started)
        assert started.stdout.split() == ["1", "False"], describe(started)  # the .pth ran, once
    assert doctor_hook_files(venv, tmp_path) == [str(purelib / PTH)]


@pytest.mark.parametrize(("python", "pip"), PYTHONS)
def test_package_directory_removed_leaving_the_pth_is_silent(
    python: str,
    pip: str,
    tmp_path: Path,
    pip_wheelhouse: Path,
    guard_wheel: Path,
    cache_dir: Path,
    index: LoopbackIndex,
) -> None:
    venv = own_venv(tmp_path, pip_wheelhouse, guard_wheel, python, pip)
    purelib = site_packages(venv)
    shutil.rmtree(purelib / "pip_cache_guard")
    assert (purelib / PTH).is_file()

    started = run_python(venv, ["-c", "pass"])
    assert started.returncode == 0 and started.stderr == "", describe(started)
    version = run_python(venv, ["-m", "pip", "--version"])
    assert version.returncode == 0 and version.stderr == "", describe(version)
    assert version.stdout.startswith(f"pip {pip} ")
    downloaded = pip_download(venv, cache_dir, index, ["guardtest-alpha"])
    assert downloaded.returncode == 0 and "Traceback" not in downloaded.stderr, describe(downloaded)


@pytest.mark.parametrize(("python", "pip"), PYTHONS)
def test_doctor_names_a_start_file_left_beside_the_pth_where_site_runs_it(
    python: str, pip: str, tmp_path: Path, pip_wheelhouse: Path, guard_wheel: Path
) -> None:
    venv = own_venv(tmp_path, pip_wheelhouse, guard_wheel, python, pip)
    purelib = site_packages(venv)
    (purelib / START).write_text("pip_cache_guard:install\n")  # as a 0.1.0 dev wheel left it

    in_effect = START if venv.python_version >= (3, 15) else PTH
    assert doctor_hook_files(venv, tmp_path) == [str(purelib / in_effect)]
    started = run_python(venv, ["-c", FINDERS])
    assert started.stderr == "" and started.stdout.split() == ["1", "False"], describe(started)
