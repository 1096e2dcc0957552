"""One clear voice (issue 11): pip's own "deserialization failed" warning beside the summary.

For each entry the guard handled, pip's warning is dropped (the summary says it better); with
``-v`` pip's own lines stay. Driven by real ``pip download`` runs over a damaged cache, on the
newest pip and on the oldest (CacheControl 0.12, where pip logs the warning elsewhere).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support import cache
from support.guarded import PIP_WARNING, GuardFiles, summary_block
from support.index import LoopbackIndex
from support.runner import describe, pip_download
from support.venvs import VenvFactory, find_python
from support.wheels import DEFAULT_PACKAGES

pytestmark = pytest.mark.e2e

PROJECTS = list(DEFAULT_PACKAGES)[:3]


@pytest.mark.parametrize("pip", ["26.3", "21.3.1"])
def test_pips_warning_is_folded_into_the_summary_and_returns_with_verbose(
    pip: str, make_venv: VenvFactory, cache_dir: Path, index: LoopbackIndex, tmp_path: Path
) -> None:
    venv = make_venv(find_python("3.11"), pip, guard=True)
    legacy = pip == "21.3.1"
    files = GuardFiles(tmp_path)

    def damaged_run(*extra: str) -> str:
        fill = pip_download(venv, cache_dir, index, PROJECTS, files.env())
        assert fill.returncode == 0, describe(fill)
        entries = cache.list_entries(cache_dir, legacy=legacy)
        assert len(entries) == 2 * len(PROJECTS)
        for entry in entries:
            cache.truncate(entry, -7)
        result = pip_download(venv, cache_dir, index, PROJECTS, files.env(), extra_args=extra)
        assert result.returncode == 0, describe(result)
        assert summary_block(result.stderr)[0].startswith(
            f"pip-cache-guard: {len(entries)} damaged cache entries"
        ), describe(result)
        return result.stderr

    quiet = damaged_run()
    assert quiet.count(PIP_WARNING) == 0, quiet

    verbose = damaged_run("-v")
    assert verbose.count(PIP_WARNING) >= len(PROJECTS), verbose
