"""Ready to publish: the sdist alone builds a wheel that works in a clean venv.

``python -m build --sdist`` from this checkout; then, in a fresh venv with only the pip that
``venv`` gives, ``pip wheel`` builds the wheel from that sdist (its build backend from the package
registry), ``pip install`` installs it, and ``pip-cache-guard selftest`` proves the hook live there.
``twine check`` passes for both files.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from support.runner import describe
from support.venvs import find_python

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 600.0


def run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    """A step with the machine's pip configuration (the registry); no guard switches."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_CACHE_GUARD")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    result = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, describe(result)
    return result


def test_the_sdist_alone_builds_a_wheel_whose_hook_is_live_in_a_clean_venv(
    tmp_path: Path,
) -> None:
    run(sys.executable, "-m", "build", "--sdist", "-o", tmp_path / "dist", REPO_ROOT)
    (sdist,) = (tmp_path / "dist").glob("pip_cache_guard-*.tar.gz")
    clean = tmp_path / "clean"
    run(find_python("3.12"), "-m", "venv", clean)
    python = clean / "bin" / "python"

    run(python, "-m", "pip", "wheel", "--no-deps", "-w", tmp_path / "wheels", sdist)
    (wheel,) = (tmp_path / "wheels").glob("pip_cache_guard-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "pip_cache_guard.pth" in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names), names
    run(sys.executable, "-m", "twine", "check", "--strict", sdist, wheel)

    run(python, "-m", "pip", "install", wheel)
    selftest = subprocess.run(
        [str(clean / "bin" / "pip-cache-guard"), "selftest"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert selftest.returncode == 0, describe(selftest)
    assert selftest.stderr.startswith("pip-cache-guard: selftest passed"), describe(selftest)
