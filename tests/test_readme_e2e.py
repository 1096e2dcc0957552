"""README's commands, run as written: the first command, and the CI recipe's ``run:`` lines.

The recipe runs in a venv of its own (it installs into it), with ``HOME`` of the test's own whose
``~/.cache/pip`` is a "restored" cache with damaged entries, and pip pointed at the loopback index
through the environment, as a CI job's pip configuration would.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from support import cache
from support.guarded import PREFIX
from support.index import LoopbackIndex
from support.runner import TRUSTED_HOST, describe, hermetic_env, pip_download
from support.venvs import VenvFactory, find_python

README = Path(__file__).resolve().parent.parent / "README.md"
PROJECTS = ["guardtest-alpha", "guardtest-bravo"]


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def recipe_commands() -> list[str]:
    """The ``run:`` lines of README's GitHub Actions recipe, in order."""
    (recipe,) = code_blocks("yaml")
    return re.findall(r"^\s*(?:- )?run: (.+)$", recipe, re.M)


def run_shell(command: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, shell=True, capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


def test_readmes_first_command_installs_and_runs_the_selftest() -> None:
    first = code_blocks("sh")[0].strip()
    assert first.endswith("pip-cache-guard selftest"), first
    assert "pip install ." in first, first


def test_the_ci_recipe_is_restore_verify_fix_install() -> None:
    commands = recipe_commands()
    assert commands == [
        "python -m pip install pip-cache-guard",
        "pip-cache-guard verify --fix",
        "python -m pip install -r requirements.txt",
    ]


@pytest.mark.e2e
def test_the_ci_recipe_heals_a_restored_cache_before_pip_installs(
    guard_wheel: Path, index: LoopbackIndex, tmp_path: Path
) -> None:
    own_venvs = VenvFactory(tmp_path / "venvs", tmp_path / "pip-wheels", lambda: guard_wheel)
    venv = own_venvs(find_python("3.11"), "26.3", guard=True)
    home = tmp_path / "home"
    restored = home / ".cache" / "pip"  # where actions/cache restores it
    fill = pip_download(venv, restored, index, PROJECTS)
    assert fill.returncode == 0, describe(fill)
    damaged = cache.list_entries(restored)[:3]
    for entry in damaged:
        cache.truncate(entry, -9)
    (tmp_path / "requirements.txt").write_text("\n".join(PROJECTS) + "\n")
    env = hermetic_env(
        {
            "HOME": str(home),
            "XDG_CACHE_HOME": None,
            "XDG_STATE_HOME": str(tmp_path / "state"),
            "PATH": f"{venv.path / 'bin'}{os.pathsep}{os.environ['PATH']}",
            "PIP_INDEX_URL": index.url,
            "PIP_TRUSTED_HOST": TRUSTED_HOST,
        }
    )

    install_guard, verify, install = recipe_commands()
    assert run_shell(install_guard, env, tmp_path).returncode == 0
    verified = run_shell(verify, env, tmp_path)
    assert verified.returncode == 0, describe(verified)
    assert f"damaged: {len(damaged)}" in verified.stderr, describe(verified)
    assert not any(entry.exists() for entry in damaged)
    installed = run_shell(install, env, tmp_path)
    assert installed.returncode == 0, describe(installed)
    assert PREFIX not in installed.stderr, describe(installed)  # nothing left for the hook
    assert "Successfully installed guardtest-alpha-1.0 guardtest-bravo-1.0" in installed.stdout
