"""Faults around the guard, with real pip 26.3 on Python 3.11: pip's exit code and output never
change because of a fault of ours, and no good cache entry is ever lost.

A full or read-only filesystem is a real one: a small tmpfs mounted for the test (root only; the
tests skip where ``mount`` is not allowed), filled to ENOSPC or remounted read-only, holding the
report, the history, the home directory or the cache. A pip killed in the middle of a guarded
deletion is killed for real (SIGKILL, by a ``sitecustomize`` that fires right after the guard's
claim rename), and ``verify --fix`` cleans up after it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support import cache
from support.guarded import KILL_SWITCH, REPORT_VARIABLE, read_report, summary_block
from support.index import LoopbackIndex
from support.runner import describe, pip_download, run_python
from support.venvs import Venv, VenvFactory, find_python
from support.wheels import DEFAULT_PACKAGES, BuiltWheel

PIP = "26.3"
PYTHON = "3.11"
PROJECTS = list(DEFAULT_PACKAGES)
VICTIM = "guardtest-alpha"


@pytest.fixture(scope="module")
def venv(make_venv: VenvFactory) -> Venv:
    return make_venv(find_python(PYTHON), PIP, guard=True)


@pytest.fixture(scope="module")
def filled_cache(
    venv: Venv, index_server: LoopbackIndex, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A cache holding every project's page and wheel; tests work on copies of it."""
    root = tmp_path_factory.mktemp("filled")
    index = index_server.fresh()  # whatever the tests before this module left it doing
    result = pip_download(
        venv, root / "cache", index, PROJECTS, {"XDG_STATE_HOME": str(root / "state")}
    )
    assert result.returncode == 0, describe(result)
    return root / "cache"


class SmallFilesystem:
    """A tmpfs of its own, to be filled up or made read-only."""

    def __init__(self, mountpoint: Path) -> None:
        self.root = mountpoint

    def fill(self) -> None:
        """Write zeros until the filesystem says ENOSPC, in big writes and then in bytes."""
        fd = os.open(self.root / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            for size in (1 << 20, 4096, 1):
                with contextlib.suppress(OSError):
                    while True:
                        os.write(fd, b"\0" * size)
        finally:
            os.close(fd)

    def read_only(self) -> None:
        _mount("-o", "remount,ro", str(self.root))


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def mount_small_fs() -> Iterator[Callable[[Path], SmallFilesystem]]:
    """``mount_small_fs(directory)`` mounts a 16 MiB tmpfs there; all are gone after the test."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mounted: list[Path] = []

    def mount(directory: Path) -> SmallFilesystem:
        directory.mkdir(parents=True, exist_ok=True)
        try:
            _mount("-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", str(directory))
        except (subprocess.CalledProcessError, OSError) as exc:
            pytest.skip(f"cannot mount a tmpfs here: {exc}")
        mounted.append(directory)
        return SmallFilesystem(directory)

    try:
        yield mount
    finally:
        for directory in reversed(mounted):
            subprocess.run(["umount", "-l", str(directory)], check=False, timeout=30)


@pytest.fixture
def small_fs(mount_small_fs: Callable[[Path], SmallFilesystem], tmp_path: Path) -> SmallFilesystem:
    return mount_small_fs(tmp_path / "small-fs")


@dataclass
class Setup:
    """Where one run keeps its cache, report and state, and the fault to apply before it runs."""

    cache_dir: Path
    env: dict[str, str | None]
    report: Path | None


def damaged_copy(filled_cache: Path, cache_dir: Path, index: LoopbackIndex, wheel: str) -> Path:
    """A copy of the filled cache whose ``VICTIM`` wheel entry is garbage (pip: a miss)."""
    shutil.copytree(filled_cache, cache_dir, dirs_exist_ok=True)  # http-v2 may be a mountpoint
    entry = cache.entry_path(cache_dir, index.file_url(wheel))
    cache.garbage(entry)
    return entry


def run_download(
    venv: Venv, setup: Setup, index: LoopbackIndex, dest: Path, guard: bool
) -> subprocess.CompletedProcess[str]:
    env = {**setup.env, KILL_SWITCH: None if guard else "0"}
    if dest.exists():
        shutil.rmtree(dest)
    return pip_download(venv, setup.cache_dir, index, PROJECTS, env, dest=dest)


Fault = Callable[[Path, SmallFilesystem], Setup]


def _report_on_the_fault(filesystem_fault: str) -> Fault:
    def setup(work: Path, fs: SmallFilesystem) -> Setup:
        report = fs.root / "report.json"
        getattr(fs, filesystem_fault)()
        env = {"XDG_STATE_HOME": str(work / "state"), REPORT_VARIABLE: str(report)}
        return Setup(work / "cache", env, report)

    return setup


def _history_on_the_fault(filesystem_fault: str) -> Fault:
    def setup(work: Path, fs: SmallFilesystem) -> Setup:
        getattr(fs, filesystem_fault)()
        env = {"XDG_STATE_HOME": str(fs.root / "state"), REPORT_VARIABLE: None}
        return Setup(work / "cache", env, None)

    return setup


def _home_on_the_fault(filesystem_fault: str) -> Fault:
    """HOME on the broken filesystem and no XDG variables: the history goes below HOME."""

    def setup(work: Path, fs: SmallFilesystem) -> Setup:
        (fs.root / "home").mkdir()
        getattr(fs, filesystem_fault)()
        env = {"HOME": str(fs.root / "home"), "XDG_STATE_HOME": None, REPORT_VARIABLE: None}
        return Setup(work / "cache", env, None)

    return setup


FILESYSTEM_FAULTS: dict[str, Fault] = {
    "report-no-space": _report_on_the_fault("fill"),
    "report-read-only": _report_on_the_fault("read_only"),
    "history-no-space": _history_on_the_fault("fill"),
    "history-read-only": _history_on_the_fault("read_only"),
    "home-no-space": _home_on_the_fault("fill"),
    "home-read-only": _home_on_the_fault("read_only"),
}


@pytest.mark.e2e
@pytest.mark.parametrize("fault", sorted(FILESYSTEM_FAULTS))
def test_a_full_or_read_only_place_of_ours_changes_nothing_for_pip(
    venv: Venv,
    filled_cache: Path,
    index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
    small_fs: SmallFilesystem,
    tmp_path: Path,
    fault: str,
) -> None:
    """The guard still deletes the damaged entry and says so; only what it keeps is lost."""
    setup = FILESYSTEM_FAULTS[fault](tmp_path, small_fs)
    wheel = guardtest_wheels[VICTIM].filename
    reference = Setup(tmp_path / "reference-cache", setup.env, setup.report)
    damaged_copy(filled_cache, reference.cache_dir, index, wheel)
    entry = damaged_copy(filled_cache, setup.cache_dir, index, wheel)

    unguarded = run_download(venv, reference, index, tmp_path / "dl", guard=False)
    guarded = run_download(venv, setup, index, tmp_path / "dl", guard=True)

    assert unguarded.returncode == 0, describe(unguarded)
    assert (guarded.returncode, guarded.stdout) == (unguarded.returncode, unguarded.stdout)
    assert "Traceback" not in guarded.stderr, describe(guarded)
    assert "1 deleted" in summary_block(guarded.stderr)[0]
    assert cache.read_entry(entry)["response"]["status"] == 200  # pip wrote it afresh
    if setup.report is not None:
        assert not setup.report.exists()
    # At most empty files of ours (the history's lock, an empty history), never a partial one.
    ours = [p for p in small_fs.root.rglob("*") if p.is_file() and p.name != "filler"]
    assert all(p.stat().st_size == 0 for p in ours), ours


@pytest.mark.e2e
@pytest.mark.parametrize("fault", ["fill", "read_only"])
def test_a_full_or_read_only_cache_changes_nothing_for_pip(
    venv: Venv,
    filled_cache: Path,
    index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
    mount_small_fs: Callable[[Path], SmallFilesystem],
    tmp_path: Path,
    fault: str,
) -> None:
    """The cache's ``http-v2`` on the broken filesystem; its root stays writable, or pip would
    disable the cache and never read it. The reference (kill switch) gets the same fault."""
    wheel = guardtest_wheels[VICTIM].filename
    env: dict[str, str | None] = {"XDG_STATE_HOME": str(tmp_path / "state")}
    reference = Setup(tmp_path / "reference-cache", env, None)
    setup = Setup(tmp_path / "cache", {**env, REPORT_VARIABLE: str(tmp_path / "r.json")}, None)
    entries = {}
    for run in (reference, setup):
        filesystem = mount_small_fs(cache.cache_root(run.cache_dir))
        entries[run.cache_dir] = damaged_copy(filled_cache, run.cache_dir, index, wheel)
        getattr(filesystem, fault)()
    entry = entries[setup.cache_dir]
    before = {p: p.read_bytes() for p in cache.list_entries(setup.cache_dir) if p != entry}
    before |= {cache.body_path(p): cache.body_path(p).read_bytes() for p in list(before)}

    unguarded = run_download(venv, reference, index, tmp_path / "dl", guard=False)
    guarded = run_download(venv, setup, index, tmp_path / "dl", guard=True)

    assert (guarded.returncode, guarded.stdout) == (unguarded.returncode, unguarded.stdout)
    assert guarded.returncode == 0, describe(guarded)
    assert "Traceback" not in guarded.stderr, describe(guarded)
    assert {p: p.read_bytes() for p in before} == before
    actions = {event["action"] for event in read_report(tmp_path / "r.json")["events"]}
    assert actions == ({"deleted"} if fault == "fill" else {"delete-failed"})


# -- a history file that is a link, or garbage ----------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize("history", ["link", "dangling-link", "garbage"])
def test_a_strange_history_file_changes_nothing_for_pip(
    venv: Venv,
    filled_cache: Path,
    index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
    tmp_path: Path,
    history: str,
) -> None:
    state = tmp_path / "state"
    path = state / "pip-cache-guard" / "history.jsonl"
    path.parent.mkdir(parents=True)
    target = tmp_path / "precious.txt"
    garbage = os.urandom(4000) + b'\n{"time": "x"}\n[1]\n{"events": 5, "time": 1, "cache_dir": 2}'
    if history == "garbage":
        path.write_bytes(garbage)
    else:
        if history == "link":
            target.write_bytes(b"not the guard's")
        path.symlink_to(target)
    setup = Setup(tmp_path / "cache", {"XDG_STATE_HOME": str(state)}, None)
    damaged_copy(filled_cache, setup.cache_dir, index, guardtest_wheels[VICTIM].filename)

    guarded = run_download(venv, setup, index, tmp_path / "dl", guard=True)

    assert guarded.returncode == 0 and "Traceback" not in guarded.stderr, describe(guarded)
    assert "1 deleted" in summary_block(guarded.stderr)[0]
    listed = run_python(venv, ["-m", "pip_cache_guard", "history"], {"XDG_STATE_HOME": str(state)})
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, describe(listed)
    if history == "garbage":
        assert path.read_bytes().startswith(garbage)
        assert "corrupt" in listed.stdout + listed.stderr  # the new incident is readable
    else:
        assert path.is_symlink()
        if history == "link":
            assert target.read_bytes() == b"not the guard's"
        else:
            assert not target.exists()


# -- a pip killed in the middle of a guarded deletion ----------------------------------------

# Put first on sys.path (PYTHONPATH) of the pip to be killed: SIGKILL right after the guard's
# claim number PCG_TEST_KILL_AT_CLAIM (1: the body, 2: the metadata) was renamed into place.
KILLER = """
import os, signal

_rename = os.rename
_claims = [0]


def rename(source, destination, *args, **kwargs):
    _rename(source, destination, *args, **kwargs)
    if str(destination).endswith(".pcg-claim.tmp"):
        _claims[0] += 1
        if _claims[0] == int(os.environ["PCG_TEST_KILL_AT_CLAIM"]):
            os.kill(os.getpid(), signal.SIGKILL)


os.rename = rename
"""


def rotted_copy(filled_cache: Path, cache_dir: Path, index: LoopbackIndex, wheel: str) -> Path:
    """A copy of the filled cache whose ``VICTIM`` wheel body has one byte flipped, size intact:
    only pip's hash check sees it. Written a day ago, as entries bit rot strikes are."""
    shutil.copytree(filled_cache, cache_dir)
    entry = cache.entry_path(cache_dir, index.file_url(wheel))
    cache.flip_body_byte(entry)
    day_ago = entry.stat().st_mtime - 86400
    for path in (entry, cache.body_path(entry)):
        os.utime(path, (day_ago, day_ago))
    return entry


@pytest.mark.e2e
@pytest.mark.parametrize("claim", [1, 2])
@pytest.mark.parametrize("damage", ["corrupt", "bit-rot"])
def test_a_pip_killed_while_deleting_leaves_a_claim_verify_fix_cleans(
    venv: Venv,
    filled_cache: Path,
    index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
    tmp_path: Path,
    claim: int,
    damage: str,
) -> None:
    """Killed right after claiming the body (1) or the metadata (2) of a damaged entry. A body
    only pip's hash check found bad (bit rot) looks valid to ``verify`` by its size: its claim
    carries the proof, so ``--fix`` deletes it instead of putting it back for pip to fail on."""
    (tmp_path / "killer").mkdir()
    (tmp_path / "killer" / "sitecustomize.py").write_text(KILLER)
    setup = Setup(tmp_path / "cache", {"XDG_STATE_HOME": str(tmp_path / "state")}, None)
    copy = damaged_copy if damage == "corrupt" else rotted_copy
    entry = copy(filled_cache, setup.cache_dir, index, guardtest_wheels[VICTIM].filename)
    good = {p: p.read_bytes() for p in cache.list_entries(setup.cache_dir) if p != entry}
    good |= {cache.body_path(p): cache.body_path(p).read_bytes() for p in list(good)}
    killer_env = {"PYTHONPATH": str(tmp_path / "killer"), "PCG_TEST_KILL_AT_CLAIM": str(claim)}

    killed = run_download(venv, Setup(setup.cache_dir, {**setup.env, **killer_env}, None),
                          index, tmp_path / "dl", guard=True)  # fmt: skip

    assert killed.returncode == -signal.SIGKILL, describe(killed)
    claims = list(setup.cache_dir.rglob("*.pcg-claim.tmp"))
    assert len(claims) == 1, claims
    verify = ["-m", "pip_cache_guard", "verify", "--cache-dir", str(setup.cache_dir), "--json"]
    found = run_python(venv, verify)
    assert found.returncode == 1, describe(found)
    reasons = {p["path"]: p["reason"] for p in json.loads(found.stdout)["problems"]}
    if damage == "bit-rot" and claim == 1:
        assert "proven damaged" in reasons[str(claims[0])], reasons

    fixed = run_python(venv, [*verify, "--fix"])

    assert fixed.returncode == 0, describe(fixed)
    actions = {p["path"]: p["action"] for p in json.loads(fixed.stdout)["problems"]}
    assert actions[str(claims[0])] == "deleted", actions
    assert not list(setup.cache_dir.rglob("*.pcg-claim.tmp"))
    assert not entry.exists() and not cache.body_path(entry).exists()
    assert {path: path.read_bytes() for path in good} == good
    clean = run_python(venv, verify)
    assert clean.returncode == 0, describe(clean)
    index.reset_log()
    again = run_download(venv, setup, index, tmp_path / "dl", guard=False)
    assert again.returncode == 0 and "deserialization failed" not in again.stderr, describe(again)
    assert index.count("/files/") == 1, index.counts()  # only the damaged wheel, afresh


# -- portability: nothing pip holds open is renamed -------------------------------------------

# Run inside the guarded venv: pip's own SafeFileCache and vendored CacheControl, one damaged
# entry, and every rename the guard makes checked against the files this process holds open
# (/proc/self/fd). Windows refuses to rename an open file; Linux does not, so it is asked here.
OPEN_WHILE_RENAMED = """
import email.utils, io, json, os, sys, tempfile, time
from pip._internal.network.cache import SafeFileCache
from pip._vendor import requests, urllib3
from pip._vendor.cachecontrol.controller import CacheController
from pip._vendor.cachecontrol.serialize import Serializer

damage = sys.argv[1]
url = "https://files.example/demo-1.0-py3-none-any.whl"
body = b"wheel bytes " * 100
cache = SafeFileCache(tempfile.mkdtemp())
request = requests.Request("GET", url).prepare()
headers = {"Date": email.utils.formatdate(time.time(), usegmt=True), "ETag": '"x"',
           "Content-Length": str(len(body)), "Cache-Control": "max-age=100000"}
response = urllib3.HTTPResponse(body=io.BytesIO(body), headers=headers, status=200,
                                preload_content=False, decode_content=False)
cache.set(url, b"cc=4,\\xc1 garbage" if damage == "corrupt" else
          Serializer().dumps(request, response, b""))
cache.set_body(url, body[:-7] if damage == "body-mismatch" else body)

def open_paths():
    paths = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            paths.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
    return paths

renamed_while_open = []
_rename = os.rename
def rename(source, destination, *args, **kwargs):
    if os.path.realpath(source) in open_paths():
        renamed_while_open.append(source)
    return _rename(source, destination, *args, **kwargs)
os.rename = rename

result = CacheController(cache).cached_request(request)
path = cache._get_cache_path(url)
print(json.dumps({"result": bool(result), "renamed_while_open": renamed_while_open,
                  "left": [os.path.exists(path), os.path.exists(path + ".body")]}))
"""


@pytest.mark.e2e
@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to see open files")
@pytest.mark.parametrize("damage", ["corrupt", "body-mismatch"])
def test_the_guard_never_renames_a_file_pip_holds_open(venv: Venv, damage: str) -> None:
    """pip opened the entry's body before the guard decides; it is closed before the claim."""
    result = run_python(venv, ["-c", OPEN_WHILE_RENAMED, damage])

    assert result.returncode == 0, describe(result)
    outcome = json.loads(result.stdout)
    assert outcome == {"result": False, "renamed_while_open": [], "left": [False, False]}
