"""``pip-cache-guard selftest`` in real guarded venvs, offline, on every pip generation (issue 11).

Every index and proxy points at a closed port, so anything that tried the network would fail; the
test's home, state and cache dirs are its own, and must stay untouched: the self-test works in a
throwaway cache and writes no report and no history.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from support.runner import describe, hermetic_env, run_python
from support.venvs import Venv, VenvFactory, find_python, new_python_params

pytestmark = pytest.mark.e2e

UNREACHABLE = "http://127.0.0.1:9"  # the discard port: connection refused
GENERATIONS = [
    pytest.param("3.11", "21.3.1", id="pip21.3.1-body-inside-no-load-from-cache"),
    pytest.param("3.11", "23.2.1", id="pip23.2.1-body-inside"),
    pytest.param("3.11", "24.0", id="pip24.0-separate-body"),
    pytest.param("3.11", "25.1.1", id="pip25.1.1-separate-body"),
    pytest.param("3.11", "26.3", id="pip26.3-import-barrier"),
    *new_python_params(),
]


def offline_env(tmp_path: Path, **more: str) -> dict[str, str | None]:
    """Every index unreachable; home, state, cache and report of the test's own."""
    return {
        "HOME": str(tmp_path / "home"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "PIP_CACHE_GUARD_REPORT": str(tmp_path / "report.json"),
        "PIP_INDEX_URL": f"{UNREACHABLE}/simple/",
        "PIP_EXTRA_INDEX_URL": f"{UNREACHABLE}/extra/",
        "PIP_FIND_LINKS": f"{UNREACHABLE}/links/",
        "http_proxy": UNREACHABLE,
        "https_proxy": UNREACHABLE,
        "HTTP_PROXY": UNREACHABLE,
        "HTTPS_PROXY": UNREACHABLE,
        "no_proxy": "",
        **more,
    }


def selftest(venv: Venv, tmp_path: Path, **more: str) -> subprocess.CompletedProcess[str]:
    script = "import sys; from pip_cache_guard.cli import main; sys.exit(main(['selftest']))"
    return run_python(venv, ["-c", script], offline_env(tmp_path, **more))


@pytest.mark.parametrize(("python", "pip"), GENERATIONS)
def test_selftest_passes_offline_and_touches_nothing_of_the_user(
    python: str, pip: str, make_venv: VenvFactory, tmp_path: Path
) -> None:
    venv = make_venv(find_python(python), pip, guard=True)
    result = subprocess.run(
        [str(venv.path / "bin" / "pip-cache-guard"), "selftest"],
        capture_output=True,
        text=True,
        env=hermetic_env(offline_env(tmp_path)),
        cwd=tmp_path,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, describe(result)
    assert result.stdout == "", describe(result)
    lines = result.stderr.splitlines()
    assert 1 <= len(lines) <= 2, describe(result)
    assert lines[0].startswith(f"pip-cache-guard: selftest passed: pip {pip} "), describe(result)
    assert "deleted" in lines[0], describe(result)
    # No report, no history, no cache of the user's: the self-test kept to its throwaway dir.
    assert sorted(p.name for p in tmp_path.iterdir()) == [], describe(result)


@pytest.mark.parametrize(
    ("more", "why"),
    [
        pytest.param({"PIP_CACHE_GUARD": "0"}, "kill switch", id="kill-switch"),
        pytest.param({"BLOCK_WRAPT": "1"}, "wrapt is not installed", id="wrapt-missing"),
    ],
)
def test_selftest_fails_and_says_why(
    more: dict[str, str], why: str, make_venv: VenvFactory, tmp_path: Path
) -> None:
    venv = make_venv(find_python("3.11"), "26.3", guard=True)
    if "BLOCK_WRAPT" in more:  # an import of wrapt fails, as in an environment without it
        script = (
            "import sys; sys.modules['wrapt'] = None; from pip_cache_guard.cli import main; "
            "sys.exit(main(['selftest']))"
        )
        result = run_python(venv, ["-c", script], offline_env(tmp_path))
    else:
        result = selftest(venv, tmp_path, **more)

    assert result.returncode == 1, describe(result)
    assert result.stderr.startswith("pip-cache-guard: selftest FAILED: "), describe(result)
    assert why in result.stderr, describe(result)
    assert "Traceback" not in result.stderr, describe(result)
