"""Many threads of one process over the same damaged entries (issue 16).

Poetry downloads with a thread pool (cpu count + 4) over one CacheControl cache; pipenv's
pure-python resolver fetches index pages with up to 16 threads over one pip session. Here 16 real
threads start together and each fetches every URL through one shared session: each damaged entry
must give one event, one deletion, and the summary must count each once. The deletions are
counted with an audit hook (``os.remove`` of a file the guard claimed and did not give back),
inside the process.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Callable

import pytest

from pip_cache_guard import entries

from support import cache
from support.guarded import PREFIX, GuardFiles, outcomes, read_report, summary_block
from support.index import LoopbackIndex
from support.runner import describe, run_python
from support.venvs import Venv, find_python, make_tool_venv

pytestmark = pytest.mark.e2e

THREADS = 16
HOUR = 3600

# Every thread waits at the barrier, then fetches every URL (each thread in its own order)
# through the one session; the main thread prints what each got and the guard's deletions.
FETCH_IN_THREADS = """
import json, os, sys, threading
from concurrent.futures import ThreadPoolExecutor
kind, directory, threads, claim_suffix, *urls = sys.argv[1:]
threads = int(threads)
removed, given_back = [], set()
def audit(event, args):
    if event == "os.remove" and str(args[0]).endswith(claim_suffix):
        removed.append(str(args[0]))
    elif event == "os.link" and str(args[0]).endswith(claim_suffix):
        given_back.add(str(args[0]))  # a fresh file claimed, linked back, then its name removed
sys.addaudithook(audit)
if kind.startswith("pip"):
    from pip._internal.network.session import PipSession
    session = PipSession(cache=directory, trusted_hosts=["127.0.0.1"])
else:
    import requests
    from cachecontrol import CacheControl
    from cachecontrol.caches import FileCache, SeparateBodyFileCache
    cache = (SeparateBodyFileCache if kind == "separate" else FileCache)(directory)
    session = CacheControl(requests.Session(), cache=cache)
barrier = threading.Barrier(threads)
def worker(n):
    barrier.wait()
    got = {}
    for url in urls[n % len(urls):] + urls[:n % len(urls)]:
        response = session.get(url)
        response.raise_for_status()
        got[url] = len(response.content)
    return got
with ThreadPoolExecutor(threads) as pool:
    results = list(pool.map(worker, range(threads)))
deleted = [path for path in removed if path not in given_back]
print(json.dumps({"results": results, "deleted": deleted}))
"""


def _age(path: Path) -> None:
    moment = time.time() - HOUR
    os.utime(path, (moment, moment))


def _claimed_from(claimed: str) -> str:
    """The path a file had before the guard claimed it (``entries._claim``'s private name)."""
    return claimed[: -len(entries.CLAIM_SUFFIX)].rsplit(".", 1)[0]


# What each kind of session needs besides the guard: the newest standalone CacheControl (and
# pip 26.3: CacheControl 0.14.4 vendored), or pip 23.2.1 (CacheControl 0.12.11: the guard decides
# inside ``Serializer.loads``; body inside the metadata file, in ``http/``).
PACKAGES = {
    "pip-23.2.1": ["requests", "pip==23.2.1"],
    "other": ["cachecontrol[filecache]", "requests", "pip==26.3"],
}


@pytest.fixture(scope="module")
def venvs(tmp_path_factory: pytest.TempPathFactory, guard_wheel: Path) -> Callable[[str], Venv]:
    root = tmp_path_factory.mktemp("threads")
    made: dict[str, Venv] = {}

    def venv(kind: str) -> Venv:
        name = kind if kind in PACKAGES else "other"
        if name not in made:
            made[name] = make_tool_venv(
                root / name, find_python("3.11"), PACKAGES[name], guard_wheel
            )
        return made[name]

    return venv


def _run(
    venv: Venv,
    tmp_path: Path,
    kind: str,
    directory: Path,
    urls: list[str],
    env: dict[str, str | None],
) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "threads.py"
    script.write_text(FETCH_IN_THREADS)
    args = [str(script), kind, str(directory), str(THREADS), entries.CLAIM_SUFFIX, *urls]
    return run_python(venv, args, env)


@pytest.mark.parametrize("kind", ["separate", "inside", "pip", "pip-23.2.1"])
def test_sixteen_threads_over_the_same_damaged_entries_give_one_event_and_one_deletion_each(
    venvs: Callable[[str], Venv], index: LoopbackIndex, tmp_path: Path, kind: str
) -> None:
    cc_venv = venvs(kind)
    legacy = kind == "pip-23.2.1"
    inside = kind == "inside" or legacy  # the body is kept in the metadata file
    directory = tmp_path / {"pip": "http-v2", "pip-23.2.1": "http"}.get(kind, "_http_")
    files = GuardFiles(tmp_path)
    pages = [index.project_url(p) for p in ("guardtest-alpha", "guardtest-bravo", "guardtest-echo")]
    wheels = [
        index.file_url(f"guardtest_{p}-1.0-py3-none-any.whl") for p in ("alpha", "bravo", "charlie")
    ]
    urls = pages + wheels
    filled = _run(cc_venv, tmp_path, kind, directory, urls, files.env())
    assert filled.returncode == 0, describe(filled)
    good = json.loads(filled.stdout)["results"][0]

    def entry(url: str) -> Path:
        if kind.startswith("pip"):
            return cache.entry_path(directory.parent, url, legacy=legacy)
        return Path(entries.entry_path(str(directory), cache.cache_key(url)))

    cache.garbage(entry(pages[0]))
    cache.wrong_shape(entry(pages[1]))
    damaged = {pages[0]: "corrupt", pages[1]: "corrupt"}
    if inside:
        cache.truncate(entry(wheels[0]), 200)
        damaged[wheels[0]] = "corrupt"
    else:
        cache.truncate_body(entry(wheels[0]), 10)
        damaged[wheels[0]] = "body-mismatch"
    if kind == "separate":  # pip's own cache class refuses such an entry: a plain miss
        cache.body_path(entry(wheels[1])).unlink()
        _age(entry(wheels[1]))
        damaged[wheels[1]] = "missing-body"
    untouched = cache.snapshot(entry(wheels[2]).parent)

    index.reset_log()
    result = _run(cc_venv, tmp_path, kind, directory, urls, files.env(report="threads"))

    assert result.returncode == 0 and "Traceback" not in result.stderr, describe(result)
    printed = json.loads(result.stdout)
    assert printed["results"] == [good] * THREADS  # every thread got every file whole
    report = read_report(files.report("threads"))
    assert outcomes(report) == {url: (kind_, "deleted") for url, kind_ in damaged.items()}
    deleted = [str(entry(url)) for url in damaged]
    deleted += [
        str(cache.body_path(entry(url)))
        for url, damage in damaged.items()
        if not inside and damage != "missing-body"
    ]
    assert Counter(map(_claimed_from, printed["deleted"])) == Counter(deleted)
    block = summary_block(result.stderr)
    assert block[0].startswith(f"{PREFIX} {len(damaged)} damaged cache entr"), block
    assert cache.snapshot(entry(wheels[2]).parent) == untouched
    for url in damaged:  # each fetched again and stored once more
        assert entry(url).is_file()
