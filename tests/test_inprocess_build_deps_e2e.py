"""pip 26.3's ``--use-feature=inprocess-build-deps`` (issue 16): the build dependency of an sdist
is installed by the running pip itself, not by a child pip. The guard's per-process state then
spans the nested install: one summary, each damaged entry once, in the right cache.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from support import cache
from support.guarded import GuardFiles, assert_clean_exit, outcomes, read_report, summary_block
from support.index import LoopbackIndex
from support.runner import describe, pip_download, run_pip
from support.venvs import VenvFactory, find_python
from support.wheels import BuiltWheel, build_sdist

pytestmark = pytest.mark.e2e

SDIST = "guardtest-built"  # its in-tree backend needs BUILD_DEPENDENCY to build
BUILD_DEPENDENCY = "guardtest-charlie"


def test_a_nested_in_process_install_of_build_dependencies_is_summed_up_once(
    make_venv: VenvFactory,
    cache_dir: Path,
    index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
    tmp_path: Path,
) -> None:
    venv = make_venv(find_python("3.11"), "26.3", guard=True)
    dependency = guardtest_wheels[BUILD_DEPENDENCY]
    index.add_wheel(build_sdist(tmp_path / "dists", SDIST, BUILD_DEPENDENCY).path)
    files = GuardFiles(tmp_path)
    fill = pip_download(venv, cache_dir, index, [BUILD_DEPENDENCY, SDIST], files.env())
    assert fill.returncode == 0, describe(fill)
    page, wheel = index.project_url(BUILD_DEPENDENCY), index.file_url(dependency.filename)
    cache.truncate(cache.entry_path(cache_dir, page), -7)  # met by the nested install only
    cache.truncate_body(cache.entry_path(cache_dir, wheel), 10)
    # A child pip would take this cache from the environment; the nested install is to use the
    # outer pip's own (``--cache-dir``), and so is the guard's summary.
    other_cache = tmp_path / "other-cache"

    def install(report: str) -> subprocess.CompletedProcess[str]:
        return run_pip(
            venv,
            ["install", "--use-feature=inprocess-build-deps", "--no-deps", "--progress-bar",
             "off", "--target", str(tmp_path / report), SDIST],
            cache_dir,
            index,
            files.env(report=report, PIP_CACHE_DIR=str(other_cache)),
        )  # fmt: skip

    index.reset_log()
    result = install("inprocess")

    assert_clean_exit(result)
    assert (tmp_path / "inprocess" / "guardtest_built" / "__init__.py").is_file()
    block = summary_block(result.stderr)
    assert block[0].startswith("pip-cache-guard: 2 damaged cache entries"), block
    (cache_line,) = [line for line in block if line.strip().startswith("cache:")]
    assert str(cache_dir) in cache_line, block
    report = read_report(files.report("inprocess"))
    assert report["cache_dir"] == str(cache_dir / "http-v2")
    assert outcomes(report) == {page: ("corrupt", "deleted"), wheel: ("body-mismatch", "deleted")}
    assert {Path(e["cache_file"]).is_relative_to(cache_dir) for e in report["events"]} == {True}
    (incident,) = files.history_lines()
    assert sorted(event["url"] for event in incident["events"]) == sorted([page, wheel])
    assert not other_cache.exists()
    assert index.count(f"/files/{dependency.filename}") == 1  # fetched again once, stored

    quiet = install("quiet")
    assert_clean_exit(quiet)
    assert "pip-cache-guard" not in quiet.stderr
