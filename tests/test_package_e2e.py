"""Ready to publish, and README's first command on a fresh machine.

``python -m build`` builds the sdist and then the wheel from that sdist alone; ``twine check``
passes for both. README's first command then runs, as written, in the unpacked sdist (a fresh
tree, a new venv, only the package registry reachable): it installs the guard and its
``selftest`` proves the hook live there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from support.runner import describe

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 600.0


def run(
    command: list[str | Path] | str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """A step with the machine's pip configuration (the registry); no guard switches."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_CACHE_GUARD")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    result = subprocess.run(
        command if isinstance(command, str) else [str(part) for part in command],
        shell=isinstance(command, str),
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, describe(result)
    return result


def readme_first_command() -> str:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    return text.split("```sh\n", 1)[1].split("```", 1)[0].strip()


def test_the_sdist_alone_builds_a_wheel_and_readmes_first_command_proves_the_hook_live(
    tmp_path: Path,
) -> None:
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "build", "-o", dist, REPO_ROOT])  # the wheel is built from the sdist
    (sdist,) = dist.glob("pip_cache_guard-*.tar.gz")
    (wheel,) = dist.glob("pip_cache_guard-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "pip_cache_guard.pth" in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names), names
    run([sys.executable, "-m", "twine", "check", "--strict", sdist, wheel])

    with tarfile.open(sdist) as archive:
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        archive.extractall(tmp_path / "unpacked", **safe)
    (tree,) = (tmp_path / "unpacked").iterdir()
    command = readme_first_command()
    assert command.endswith("pip-cache-guard selftest"), command
    result = run(command, cwd=tree)
    assert "pip-cache-guard: selftest passed" in result.stderr, describe(result)
