"""``pip install`` with the guard on pips that block imports once an installation starts (issue 7).

pip 26.1 and 26.2 print a DEPRECATION line for every import after the installation started, pip 26.3
refuses it; the guard's exit work (history, platformdirs) must be imported before. ``pip download``
never starts an installation, so these runs install (into ``--target``, leaving the shared venv as
it was), heal a damaged entry under ``PIP_CACHE_GUARD_DEBUG=1`` and check that nothing was said or
lost: no DEPRECATION line, no internal error, the incident in the history. The second test builds
an sdist whose build dependency pip's child process installs from the damaged cache.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from support import cache
from support.guarded import DEBUG_SWITCH, PREFIX, GuardFiles, read_report, summary_block
from support.index import LoopbackIndex
from support.runner import describe, pip_download, run_pip
from support.venvs import Venv, VenvFactory, find_python, new_python_params
from support.wheels import BuiltWheel, build_sdist

pytestmark = pytest.mark.e2e

# pip 26.1 and 26.2 warn about late imports, 26.3 blocks them. 26.2 also runs the child pip inside
# the build environment, whose sitecustomize hides the venv's site-packages (and so wrapt).
PIPS = [
    pytest.param("3.11", "26.1", id="pip26.1-warns"),
    pytest.param("3.11", "26.2", id="pip26.2-warns-isolated-child"),
    pytest.param("3.11", "26.3", id="pip26.3-blocks"),
    *new_python_params(("26.1", "26.2", "26.3")),
]
BUILD_DEPENDENCY = "guardtest-alpha"


@pytest.fixture
def files(tmp_path: Path) -> GuardFiles:
    return GuardFiles(tmp_path)


@pytest.fixture(scope="module")
def sdist(index_server: LoopbackIndex, tmp_path_factory: pytest.TempPathFactory) -> BuiltWheel:
    """``guardtest-sdist``, served by the session's index; building it needs guardtest-alpha."""
    built = build_sdist(tmp_path_factory.mktemp("sdist"), "guardtest-sdist", BUILD_DEPENDENCY)
    index_server.add_wheel(built.path)
    return built


def guarded_venv(make_venv: VenvFactory, python: str, pip: str) -> Venv:
    return make_venv(find_python(python), pip, guard=True)


def install(
    venv: Venv, cache_dir: Path, index: LoopbackIndex, target: Path, files: GuardFiles, *args: str
) -> str:
    """``pip install --target`` under the debug switch; its stderr, after checking it is clean."""
    result = run_pip(
        venv,
        ["install", "--no-deps", "--target", str(target), "--progress-bar", "off", *args],
        cache_dir,
        index,
        # PIP_CACHE_DIR too: pip does not pass --cache-dir on to its child process.
        files.env(report="install", **{DEBUG_SWITCH: "1", "PIP_CACHE_DIR": str(cache_dir)}),
    )
    assert result.returncode == 0, describe(result)
    assert "DEPRECATION" not in result.stderr + result.stdout, describe(result)
    assert "pip-cache-guard (debug)" not in result.stderr, describe(result)
    assert "Traceback" not in result.stderr, describe(result)
    return result.stderr


@pytest.mark.parametrize(("python", "pip"), PIPS)
def test_pip_install_heals_an_entry_without_a_word_from_pips_import_barrier(
    python: str,
    pip: str,
    make_venv: VenvFactory,
    cache_dir: Path,
    index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
    files: GuardFiles,
    tmp_path: Path,
) -> None:
    venv = guarded_venv(make_venv, python, pip)
    wheel = guardtest_wheels["guardtest-bravo"]
    filled = pip_download(venv, cache_dir, index, [wheel.project], files.env())
    assert filled.returncode == 0, describe(filled)
    entry = cache.entry_path(cache_dir, index.file_url(wheel.filename))
    cache.garbage(entry)

    stderr = install(venv, cache_dir, index, tmp_path / "target", files, wheel.project)

    assert (tmp_path / "target" / "guardtest_bravo" / "payload.bin").is_file()
    assert summary_block(stderr)[0].startswith(f"{PREFIX} 1 damaged cache entry (1 corrupt)")
    url = cache.cache_key(index.file_url(wheel.filename))
    report = read_report(files.report("install"))
    assert [(e["url"], e["action"]) for e in report["events"]] == [(url, "deleted")]
    incidents = files.history_lines()
    assert len(incidents) == 1
    assert incidents[0]["pip_version"] == pip
    assert [event["url"] for event in incidents[0]["events"]] == [url]


@pytest.mark.parametrize(("python", "pip"), PIPS)
def test_the_child_pip_that_installs_build_dependencies_heals_and_remembers_too(
    python: str,
    pip: str,
    make_venv: VenvFactory,
    cache_dir: Path,
    index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
    sdist: BuiltWheel,
    files: GuardFiles,
    tmp_path: Path,
) -> None:
    venv = guarded_venv(make_venv, python, pip)
    # The first install fills the cache: the sdist by pip itself, the build dependency by the
    # child pip that installs it into the build environment.
    install(venv, cache_dir, index, tmp_path / "first", files, sdist.project)
    assert files.history_lines() == []
    dependency = guardtest_wheels[BUILD_DEPENDENCY]
    entry = cache.entry_path(cache_dir, index.file_url(dependency.filename))
    cache.garbage(entry)
    shutil.rmtree(cache_dir / "wheels")  # else pip takes the wheel it built and builds nothing
    index.reset_log()

    # -v: pip passes it on to the child and shows the child's output (and so any DEPRECATION).
    stderr = install(venv, cache_dir, index, tmp_path / "second", files, "-v", sdist.project)

    assert (tmp_path / "second" / "guardtest_sdist" / "__init__.py").is_file()
    assert index.count(f"/files/{dependency.filename}") == 1, index.counts()
    url = cache.cache_key(index.file_url(dependency.filename))
    assert url in stderr  # the parent's summary tells what its child healed (-v: the URL)
    incidents = files.history_lines()
    assert len(incidents) == 1, incidents  # one: the parent's, with its child's event
    assert [(e["url"], e["action"]) for e in incidents[0]["events"]] == [(url, "deleted")]
