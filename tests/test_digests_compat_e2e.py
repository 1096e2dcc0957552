"""The guard's own digest record kept its promises to everyone else who reads or writes the cache.

A guarded pip adds ``{"sha256", "size"}`` under a key of its own to each entry's metadata
(``pip_cache_guard.digests``). These tests hold it to the provisos of issue 17, with real pips, a
loopback index whose links carry no hash, and real caches:

- pips without the guard (the kill switch, and the other layout's pips) read such entries as
  before: hits, the same bytes, nothing rewritten; ``verify`` and the classifier call them ok
  (standalone CacheControl: ``test_cachecontrol_versions.py``);
- a later write by a pip without the guard (a 304 that rewrites the metadata, a 200 of a file the
  index replaced) leaves an entry unverifiable, never damaged, never lost; a guarded 304 keeps it;
- two guarded pips storing the same URL at once leave a pair whose record matches its body; when
  the index changed the file between them, the pair may be split, and the next guarded read
  evicts that entry once, fetches it again, and touches nothing else;
- an sdist damaged where nothing else looks (a byte of a member stored uncompressed: tarfile never
  reads gzip's CRC) is installed as the original by a guarded ``pip install``, in the same run,
  and as damaged without the guard.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import msgpack
import pytest

from pip_cache_guard import digests
from pip_cache_guard.diagnose import OK, diagnose

from support import cache
from support.guarded import (
    PREFIX,
    GuardFiles,
    assert_clean_exit,
    outcomes,
    read_report,
    summary_block,
)
from support.index import LoopbackIndex
from support.runner import describe, pip_download, run_pip, run_python
from support.venvs import Venv, VenvFactory, find_python
from support.wheels import BuiltSdist, BuiltWheel, build_payload_sdist, build_wheel

pytestmark = pytest.mark.e2e

PROJECTS = ["guardtest-alpha", "guardtest-bravo"]
SDIST = "guardtest-india"


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> BuiltSdist:
    """An sdist whose tar is stored, not compressed (gzip level 0), and whose installed
    ``payload.bin`` is copied from its own member by its in-tree backend."""
    return build_payload_sdist(tmp_path_factory.mktemp("stored-sdist"), SDIST, compresslevel=0)


@pytest.fixture(scope="module")
def no_hash_index_server(
    guardtest_wheels: dict[str, BuiltWheel], sdist: BuiltSdist
) -> Iterator[LoopbackIndex]:
    """An index of this module's own whose links carry no hash: pip checks nothing, the guard
    records every body it stores."""
    files = [guardtest_wheels[project].path for project in PROJECTS] + [sdist.path]
    with LoopbackIndex(files, hashes=False) as server:
        yield server


@pytest.fixture
def index(no_hash_index_server: LoopbackIndex) -> LoopbackIndex:
    return no_hash_index_server.fresh()


@pytest.fixture
def guarded(make_venv: VenvFactory) -> Callable[[str], Venv]:
    """The guarded venv of a pip (the kill switch makes it a pip without the guard)."""
    return lambda pip: make_venv(find_python("3.11"), pip, guard=True)


class Cache:
    """One pip cache of a test's own, the guard's files beside it, and the runs made on it."""

    def __init__(self, root: Path, index: LoopbackIndex) -> None:
        self.root, self.index = root, index
        self.dir = root / "pip-cache"
        self.files = GuardFiles(root)

    def download(
        self, venv: Venv, name: str, *, guarded: bool = True, projects: list[str] = PROJECTS
    ) -> subprocess.CompletedProcess[str]:
        env = self.files.env(report=name) | ({} if guarded else {"PIP_CACHE_GUARD": "0"})
        return pip_download(venv, self.dir, self.index, projects, env, dest=self.root / name)

    def entry(self, filename: str, legacy: bool) -> Path:
        return cache.entry_path(self.dir, self.index.file_url(filename), legacy=legacy)

    def saved(self, run: str, filename: str) -> bytes:
        return (self.root / run / filename).read_bytes()


def record(entry: Path) -> Any:
    return cache.read_entry(entry).get(digests.RECORD_KEY)


def entry_files(entry: Path, legacy: bool) -> dict[Path, bytes]:
    """The files of an entry and their bytes."""
    paths = [entry] if legacy else [entry, cache.body_path(entry)]
    return {path: path.read_bytes() for path in paths}


def assert_consistent(entry: Path, legacy: bool) -> None:
    """The entry's record says what its body hashes to."""
    body = cache.stored_body(entry, legacy=legacy)
    assert record(entry) == digests.record_of(body), entry


def unpack(payload: bytes) -> Any:
    return msgpack.loads(payload, raw=False)


# -- 1. readers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("writer", "reader"),
    [
        ("26.3", "26.3"),
        ("26.3", "24.0"),
        ("21.3.1", "21.3.1"),
        ("21.3.1", "23.2.1"),
        ("23.2.1", "21.3.1"),
        ("23.2.1", "23.2.1"),
    ],
)
def test_entries_carrying_the_record_are_read_as_before_by_pips_without_the_guard(
    writer: str,
    reader: str,
    guarded: Callable[[str], Venv],
    make_venv: VenvFactory,
    index: LoopbackIndex,
    tmp_path: Path,
    guardtest_wheels: dict[str, BuiltWheel],
) -> None:
    """Written by a guarded pip, read by a pip of the same layout with the guard switched off,
    then by that pip where the guard was never installed: every file is a hit (not one request
    for it), saved byte for byte, and nothing rewritten."""
    store, legacy = Cache(tmp_path, index), cache.is_legacy(writer)
    assert_clean_exit(store.download(guarded(writer), "fill"))
    wheels = [guardtest_wheels[project] for project in PROJECTS]
    stored: dict[Path, bytes] = {}
    for wheel in wheels:
        entry = store.entry(wheel.filename, legacy)
        assert record(entry) == {"sha256": wheel.sha256, "size": wheel.size}
        stored |= entry_files(entry, legacy)
    readers = {
        "switched-off": guarded(reader),
        "not-installed": make_venv(find_python("3.11"), reader, guard=False),
    }

    for name, venv in readers.items():
        index.reset_log()
        result = store.download(venv, name, guarded=False)

        assert_clean_exit(result)
        assert PREFIX not in result.stderr, describe(result)
        assert index.count("/files/") == 0, index.counts()  # every file served from the cache
        for wheel in wheels:
            assert store.saved(name, wheel.filename) == wheel.path.read_bytes()
        assert {path: path.read_bytes() for path in stored} == stored  # read, not rewritten
    # The guard's own judges call them ok: verify, and the classifier on each entry's bytes.
    verify = ["-m", "pip_cache_guard", "verify", "--cache-dir", str(store.dir), "--json"]
    checked = run_python(guarded(writer), verify, store.files.env())
    problems = json.loads(checked.stdout)["problems"]
    assert (checked.returncode, problems) == (0, []), describe(checked)
    for path, data in stored.items():
        if path.name.endswith(".body"):
            continue
        body_size = None if legacy else cache.body_path(path).stat().st_size
        assert diagnose(data, unpack, {}, body_size) == OK, path


# -- 2. a later write by a pip without the guard ----------------------------------------------


@pytest.mark.parametrize("pip", ["26.3", "23.2.1", "21.3.1"])
def test_a_later_write_by_a_pip_without_the_guard_leaves_the_entry_unverifiable_never_damaged(
    pip: str,
    guarded: Callable[[str], Venv],
    index: LoopbackIndex,
    tmp_path: Path,
    guardtest_wheels: dict[str, BuiltWheel],
) -> None:
    """``max-age=0``: every run revalidates the file. A 304 rewrites the entry's metadata: a
    guarded pip carries the record over, a pip without the guard drops it (unverifiable: fine).
    Then the index replaces the file (a new ETag): a pip without the guard stores the new bytes
    without a record. A guarded run after each is silent, keeps the entry, saves what the index
    serves."""
    venv, store, legacy = guarded(pip), Cache(tmp_path, index), cache.is_legacy(pip)
    wheel = guardtest_wheels[PROJECTS[0]]
    entry = store.entry(wheel.filename, legacy)
    index.cache_control = "max-age=0"
    assert_clean_exit(store.download(venv, "fill", projects=PROJECTS[:1]))
    recorded = record(entry)
    assert recorded == digests.record_of(wheel.path.read_bytes())

    def run(name: str, *, guarded: bool, status: int) -> subprocess.CompletedProcess[str]:
        index.reset_log()
        result = store.download(venv, name, guarded=guarded, projects=PROJECTS[:1])
        assert_clean_exit(result)
        assert result.stderr == "", describe(result)
        assert index.count("/files/", status=status) == index.count("/files/") == 1
        assert entry.is_file(), "the entry was lost"
        return result

    run("revalidated-guarded", guarded=True, status=304)
    assert record(entry) == recorded  # a guarded 304 keeps the record
    run("revalidated-plain", guarded=False, status=304)
    assert record(entry) is None  # a 304 without the guard drops it
    assert cache.stored_body(entry, legacy=legacy) == wheel.path.read_bytes()
    run("after-plain-304", guarded=True, status=304)
    assert store.saved("after-plain-304", wheel.filename) == wheel.path.read_bytes()

    replaced = build_wheel(tmp_path / "replaced", wheel.project, payload_size=20_000, seed=7)
    assert replaced.filename == wheel.filename and replaced.sha256 != wheel.sha256
    index.substitute(wheel.filename, replaced.path.read_bytes())
    run("stored-plain", guarded=False, status=200)
    assert record(entry) is None
    assert cache.stored_body(entry, legacy=legacy) == replaced.path.read_bytes()
    run("after-plain-200", guarded=True, status=304)
    assert store.saved("after-plain-200", wheel.filename) == replaced.path.read_bytes()
    assert read_report(store.files.report("after-plain-200"))["events"] == []


@pytest.mark.parametrize("pip", ["26.3", "23.2.1", "21.3.1"])
def test_a_rotted_body_is_caught_when_a_guarded_pip_revalidates_the_entry(
    pip: str,
    guarded: Callable[[str], Venv],
    index: LoopbackIndex,
    tmp_path: Path,
    guardtest_wheels: dict[str, BuiltWheel],
) -> None:
    """``max-age=0``: pip revalidates, the index answers 304, pip serves the cached body and
    rewrites the metadata (the record carried over). A byte rotted in that body is caught on this
    path too: evicted, fetched once more, saved whole, and the entry recorded afresh."""
    venv, store, legacy = guarded(pip), Cache(tmp_path, index), cache.is_legacy(pip)
    wheel = guardtest_wheels[PROJECTS[0]]
    entry = store.entry(wheel.filename, legacy)
    index.cache_control = "max-age=0"
    assert_clean_exit(store.download(venv, "fill", projects=PROJECTS[:1]))
    cache.flip_body_byte(entry, legacy=legacy)
    index.reset_log()

    result = store.download(venv, "heal", projects=PROJECTS[:1])

    assert_clean_exit(result)
    assert store.saved("heal", wheel.filename) == wheel.path.read_bytes()
    assert index.count("/files/", status=304) == 1 and index.count("/files/", status=200) == 1
    report = read_report(store.files.report("heal"))
    key = cache.cache_key(index.file_url(wheel.filename))
    assert outcomes(report) == {key: ("bad-body", "refetched")}, report
    assert_consistent(entry, legacy)
    assert cache.stored_body(entry, legacy=legacy) == wheel.path.read_bytes()


# -- 3. two guarded pips storing the same URL at once -----------------------------------------

ROUNDS = 8


def download_together(
    venv: Venv, caches: list[Cache], name: str
) -> list[subprocess.CompletedProcess[str]]:
    """Two guarded ``pip download`` of alpha into each cache, at once."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = [
            pool.submit(store.download, venv, f"{name}-{n}", projects=PROJECTS[:1])
            for n, store in enumerate(caches)
        ]
        return [run.result() for run in runs]


def test_two_guarded_pips_storing_the_same_file_at_once_leave_a_consistent_pair(
    guarded: Callable[[str], Venv], index: LoopbackIndex, tmp_path: Path
) -> None:
    """The index answers both requests for the file at the same moment (``hold_files``), so the
    two pips store it together, round after round; each entry's record matches its body."""
    venv = guarded("26.3")
    index.hold_files(2)
    for round_ in range(ROUNDS):
        store = Cache(tmp_path / f"round-{round_}", index)
        for result in download_together(venv, [store, store], "fill"):
            assert_clean_exit(result)
            assert PREFIX not in result.stderr, describe(result)
        entries = cache.list_entries(store.dir)
        assert len(entries) == 2, entries  # alpha's page and alpha
        for entry in entries:
            assert_consistent(entry, legacy=False)


@pytest.mark.parametrize("served_later", ["the record's bytes", "the body's bytes"])
def test_a_pair_split_by_two_writers_of_different_bytes_is_evicted_once_and_nothing_else(
    served_later: str,
    guarded: Callable[[str], Venv],
    index: LoopbackIndex,
    tmp_path: Path,
    guardtest_wheels: dict[str, BuiltWheel],
) -> None:
    """The index replaced alpha while two guarded pips stored it: the metadata of the one that
    wrote it last (its record: B) beside the body of the other (A), the split CacheControl's two
    writes allow. Built from two real fills. The next guarded read finds the body does not match
    the record, evicts that entry, fetches it once more, whatever the index serves by then (the
    record's bytes, or the body's); bravo's entry is not touched, and the run after is silent.
    The entry disagreed with itself: ``bad-body``, never blamed on the index."""
    venv, store = guarded("26.3"), Cache(tmp_path / "a", index)
    alpha = guardtest_wheels[PROJECTS[0]]
    replaced = build_wheel(tmp_path / "replaced", alpha.project, payload_size=20_000, seed=7)
    assert_clean_exit(store.download(venv, "fill"))
    other = Cache(tmp_path / "b", index)
    index.substitute(alpha.filename, replaced.path.read_bytes())
    assert_clean_exit(other.download(venv, "fill", projects=PROJECTS[:1]))
    entry = store.entry(alpha.filename, legacy=False)
    shutil.copyfile(other.entry(alpha.filename, legacy=False), entry)  # record B, body A
    assert record(entry)["sha256"] == replaced.sha256
    assert cache.stored_body(entry) == alpha.path.read_bytes()
    bravo = store.entry(guardtest_wheels[PROJECTS[1]].filename, legacy=False)
    untouched = entry_files(bravo, legacy=False)
    fresh = replaced if served_later == "the record's bytes" else alpha
    index.fresh().substitute(alpha.filename, fresh.path.read_bytes())

    result = store.download(venv, "heal")

    assert_clean_exit(result)
    assert store.saved("heal", alpha.filename) == fresh.path.read_bytes()
    assert index.counts().get(("GET", f"/files/{alpha.filename}")) == 1
    assert index.count("/files/") == 1  # bravo: a hit
    block = summary_block(result.stderr)
    assert any(f"{alpha.filename}: bad-body, refetched" in line for line in block), block
    report = read_report(store.files.report("heal"))
    assert outcomes(report) == {
        cache.cache_key(index.file_url(alpha.filename)): ("bad-body", "refetched")
    }
    assert f"does not match {digests.RECORD_SOURCE}" in report["events"][0]["reason"]
    assert entry_files(bravo, legacy=False) == untouched
    assert_consistent(entry, legacy=False)
    index.reset_log()
    again = store.download(venv, "again")
    assert_clean_exit(again)
    assert again.stderr == "", describe(again)
    assert index.count("/files/") == 0


def test_two_guarded_pips_storing_different_bytes_at_once_heal_within_one_refetch(
    guarded: Callable[[str], Venv],
    index: LoopbackIndex,
    tmp_path: Path,
    guardtest_wheels: dict[str, BuiltWheel],
) -> None:
    """The index serves A and B in turn while two guarded pips store alpha at once: a round may
    leave a split pair (counted, not required); a guarded run then settles it with at most one
    event for that entry (``bad-body``, refetched), and the run after that is silent with a
    consistent pair."""
    venv = guarded("26.3")
    alpha = guardtest_wheels[PROJECTS[0]]
    replaced = build_wheel(tmp_path / "replaced", alpha.project, payload_size=20_000, seed=7)
    split = 0
    for round_ in range(ROUNDS):
        index.fresh().hold_files(2)
        index.alternate(alpha.filename, [alpha.path.read_bytes(), replaced.path.read_bytes()])
        store = Cache(tmp_path / f"round-{round_}", index)
        for result in download_together(venv, [store, store], "fill"):
            assert_clean_exit(result)
        entry = store.entry(alpha.filename, legacy=False)
        body = cache.stored_body(entry)
        split += record(entry) != digests.record_of(body)
        index.fresh().substitute(alpha.filename, replaced.path.read_bytes())
        settle = store.download(venv, "settle", projects=PROJECTS[:1])
        assert_clean_exit(settle)
        events = read_report(store.files.report("settle"))["events"]
        assert [(e["kind"], e["action"]) for e in events] in ([], [("bad-body", "refetched")])
        assert_consistent(entry, legacy=False)
        index.reset_log()
        quiet = store.download(venv, "quiet", projects=PROJECTS[:1])
        assert_clean_exit(quiet)
        assert quiet.stderr == "", describe(quiet)
        assert index.count("/files/") == 0
    print(f"split pairs: {split} of {ROUNDS} rounds")


# -- 4. an sdist damaged where nothing else looks ---------------------------------------------


def flip_inside(entry: Path, legacy: bool, member: bytes) -> None:
    """Invert one byte in the middle of ``member``'s data where the cache stores it (the body
    file, or the metadata of pip <= 23.2): the sdist's deflate blocks are stored, so the
    member's bytes are there as they are."""
    path = entry if legacy else cache.body_path(entry)
    data = bytearray(path.read_bytes())
    needle = member[len(member) // 2 : len(member) // 2 + 64]
    at = data.find(needle)
    assert at >= 0 and data.find(needle, at + 1) < 0, "the member's bytes are not stored as such"
    data[at + 32] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("pip", ["26.3", "21.3.1"])
def test_pip_install_of_a_damaged_no_hash_sdist_installs_the_original(
    pip: str,
    guarded: Callable[[str], Venv],
    index: LoopbackIndex,
    tmp_path: Path,
    sdist: BuiltSdist,
) -> None:
    """One byte of the sdist's ``payload.bin`` member flipped in the cached body: gzip's CRC is
    never read, so pip without the guard builds and installs the damaged payload. With the guard,
    the body fails the record while pip downloads it; the entry is evicted and fetched once
    more, and the original is installed, in the same run."""
    venv, legacy = guarded(pip), cache.is_legacy(pip)
    payload_name = f"{SDIST.replace('-', '_')}/payload.bin"
    original = sdist.installed[payload_name]
    store = Cache(tmp_path / "guarded", index)
    assert_clean_exit(store.download(venv, "fill", projects=[SDIST]))
    entry = store.entry(sdist.filename, legacy)
    assert record(entry) == digests.record_of(sdist.path.read_bytes())
    flip_inside(entry, legacy, original)
    plain = Cache(tmp_path / "plain", index)
    shutil.copytree(store.dir, plain.dir)  # the same damage, for a pip without the guard

    def install(where: Cache, guarded: bool) -> tuple[subprocess.CompletedProcess[str], bytes]:
        target = where.root / "target"
        env = where.files.env(report="install") | ({} if guarded else {"PIP_CACHE_GUARD": "0"})
        args = ["install", "--no-deps", "--progress-bar", "off", "--target", str(target), SDIST]
        result = run_pip(venv, args, where.dir, index, env)
        assert_clean_exit(result)
        return result, (target / payload_name).read_bytes()

    index.reset_log()
    result, installed = install(store, guarded=True)
    assert installed == original
    assert index.counts().get(("GET", f"/files/{sdist.filename}")) == 1
    block = summary_block(result.stderr)
    assert any(f"{sdist.filename}: bad-body, refetched" in line for line in block), block
    report = read_report(store.files.report("install"))
    assert outcomes(report) == {
        cache.cache_key(index.file_url(sdist.filename)): ("bad-body", "refetched")
    }

    unguarded, damaged = install(plain, guarded=False)
    assert PREFIX not in unguarded.stderr, describe(unguarded)
    assert damaged != original and len(damaged) == len(original)  # the need, shown


@pytest.mark.parametrize("pip", ["26.3", "21.3.1"])
def test_a_rotted_body_of_a_file_the_index_replaced_since_is_called_damage_not_the_index(
    pip: str,
    guarded: Callable[[str], Venv],
    index: LoopbackIndex,
    tmp_path: Path,
    guardtest_wheels: dict[str, BuiltWheel],
) -> None:
    """The guard's record is its own word, not the index's: a fresh download that differs from it
    is a file the index replaced (a wheelhouse rebuilt in place), never proof that the index
    serves bad bytes. The rotted body is ``bad-body``, and the new file is saved and recorded."""
    venv, store, legacy = guarded(pip), Cache(tmp_path, index), cache.is_legacy(pip)
    alpha = guardtest_wheels[PROJECTS[0]]
    assert_clean_exit(store.download(venv, "fill", projects=PROJECTS[:1]))
    entry = store.entry(alpha.filename, legacy)
    cache.flip_body_byte(entry, legacy=legacy)
    replaced = build_wheel(tmp_path / "replaced", alpha.project, payload_size=20_000, seed=7)
    index.substitute(alpha.filename, replaced.path.read_bytes())

    result = store.download(venv, "heal", projects=PROJECTS[:1])

    assert_clean_exit(result)
    assert store.saved("heal", alpha.filename) == replaced.path.read_bytes()
    key = cache.cache_key(index.file_url(alpha.filename))
    report = read_report(store.files.report("heal"))
    assert outcomes(report) == {key: ("bad-body", "refetched")}, report
    assert "the cache was not the cause" not in report["events"][0]["reason"]
    assert_consistent(entry, legacy)
