"""What pip's own child pips healed is told by the pip the user ran (issue 11).

``pip install`` of an sdist makes pip install the sdist's build dependency with a second pip in a
subprocess, whose output pip shows only when it fails. That child meets the damaged cache entries
of the dependency; the outer pip's summary, JSON report and history must name them, each once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support import cache
from support.guarded import GuardFiles, assert_clean_exit, outcomes, read_report, summary_block
from support.index import LoopbackIndex
from support.runner import describe, pip_download, run_pip, run_python
from support.venvs import VenvFactory, find_python
from support.wheels import BuiltWheel, build_sdist

pytestmark = pytest.mark.e2e

SDIST = "guardtest-built"  # its in-tree backend needs BUILD_DEPENDENCY to build
BUILD_DEPENDENCY = "guardtest-charlie"


@pytest.mark.parametrize("pip", ["26.3", "21.3.1"])
def test_the_outer_pip_tells_what_its_build_dependency_pip_healed(
    pip: str,
    make_venv: VenvFactory,
    cache_dir: Path,
    index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
    tmp_path: Path,
) -> None:
    venv = make_venv(find_python("3.11"), pip, guard=True)
    dependency = guardtest_wheels[BUILD_DEPENDENCY]
    index.add_wheel(build_sdist(tmp_path / "dists", SDIST, BUILD_DEPENDENCY).path)
    files = GuardFiles(tmp_path)
    # The child pip gets no --cache-dir from its parent: the environment gives both the same cache.
    # TMPDIR of the test's own: the spool of the outer pip must be gone from there afterwards.
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    same_cache = {"PIP_CACHE_DIR": str(cache_dir), "TMPDIR": str(temporary)}
    fill = pip_download(venv, cache_dir, index, [BUILD_DEPENDENCY], files.env(**same_cache))
    assert fill.returncode == 0, describe(fill)
    urls = [index.project_url(BUILD_DEPENDENCY), index.file_url(dependency.filename)]
    legacy = pip == "21.3.1"
    for url in urls:
        cache.truncate(cache.entry_path(cache_dir, url, legacy=legacy), -7)

    result = run_pip(
        venv,
        ["install", "--no-deps", "--target", str(tmp_path / "target"), SDIST],
        cache_dir,
        index,
        files.env(report="outer", **same_cache),
    )

    assert_clean_exit(result)
    assert (tmp_path / "target" / "guardtest_built" / "__init__.py").is_file()
    block = summary_block(result.stderr)
    assert block[0].startswith("pip-cache-guard: 2 damaged cache entries (2 corrupt)"), block
    assert any(dependency.filename in line for line in block), block
    assert outcomes(read_report(files.report("outer"))) == {
        url: ("corrupt", "deleted") for url in urls
    }
    (incident,) = files.history_lines()
    assert sorted(event["url"] for event in incident["events"]) == sorted(urls)
    assert not list(temporary.glob("pip-cache-guard-spool-*"))


def test_what_a_child_pip_healed_in_another_cache_is_told_under_that_cache(
    make_venv: VenvFactory,
    cache_dir: Path,
    index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
    tmp_path: Path,
) -> None:
    """Issue 15 item 7a: pip gives the child no ``--cache-dir`` of the command line, so the child
    heals the cache of its environment; the summary, report and history name that cache."""
    venv = make_venv(find_python("3.11"), "26.3", guard=True)
    dependency = guardtest_wheels[BUILD_DEPENDENCY]
    index.add_wheel(build_sdist(tmp_path / "dists", SDIST, BUILD_DEPENDENCY).path)
    files = GuardFiles(tmp_path)
    default_cache = tmp_path / "default-cache"  # the child's, from the environment
    children = {"PIP_CACHE_DIR": str(default_cache)}
    fill = pip_download(venv, default_cache, index, [BUILD_DEPENDENCY], files.env())
    assert fill.returncode == 0, describe(fill)
    body = cache.entry_path(default_cache, index.file_url(dependency.filename))
    cache.truncate(body, -7)

    result = run_pip(
        venv,
        ["install", "--no-deps", "--target", str(tmp_path / "target"), SDIST],
        cache_dir,  # on the command line: this pip's own, not its child's
        index,
        files.env(report="outer", **children),
    )

    assert_clean_exit(result)
    block = summary_block(result.stderr)
    assert f"  cache: {default_cache / 'http-v2'}" in block, block
    assert not any(str(cache_dir) in line for line in block), block
    report = read_report(files.report("outer"))
    assert report["cache_dir"] == str(cache_dir / "http-v2")  # the cache this pip used
    [event] = report["events"]
    assert (event["kind"], event["cache_dir"]) == ("corrupt", str(default_cache / "http-v2"))
    (incident,) = files.history_lines()
    assert incident["cache_dir"] == str(default_cache / "http-v2"), incident


def test_a_program_that_runs_pip_sees_pips_summary_even_after_importing_pips_controller(
    make_venv: VenvFactory, cache_dir: Path, index: LoopbackIndex, tmp_path: Path
) -> None:
    """Only pip's own subprocesses hand their events over: the spool never leaks into a parent."""
    venv = make_venv(find_python("3.11"), "26.3", guard=True)
    files = GuardFiles(tmp_path)
    fill = pip_download(venv, cache_dir, index, ["guardtest-alpha"], files.env())
    assert fill.returncode == 0, describe(fill)
    cache.truncate(cache.entry_path(cache_dir, index.project_url("guardtest-alpha")), -7)
    program = (
        "import subprocess, sys\n"
        "import pip._vendor.cachecontrol.controller  # guarded here too\n"
        "result = subprocess.run([sys.executable, '-m', 'pip', 'download', '--no-deps', '-d',\n"
        f"    {str(tmp_path / 'dl')!r}, '--cache-dir', {str(cache_dir)!r}, '--index-url',\n"
        f"    {index.url!r}, '--trusted-host', '127.0.0.1', 'guardtest-alpha'],\n"
        "    capture_output=True, text=True)\n"
        "sys.stdout.write(result.stderr)\n"
    )

    result = run_python(venv, ["-c", program], files.env())

    assert result.returncode == 0, describe(result)
    (first, *_) = summary_block(result.stdout)  # pip's stderr, as the program saw it
    assert first.startswith("pip-cache-guard: 1 damaged"), describe(result)
    assert "pip-cache-guard:" not in result.stderr, describe(result)
