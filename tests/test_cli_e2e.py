"""The ``pip-cache-guard`` command against real caches filled by real pip (issue 4, "Done means").

Every command runs in a subprocess of a venv with pip 26.3 and the guard wheel, both as the console
script ``<venv>/bin/pip-cache-guard`` and as ``python -m pip_cache_guard``, in the harness's
hermetic environment plus ``HOME``, ``XDG_STATE_HOME`` and ``XDG_CACHE_HOME`` of the test's own, so
nothing reads or writes the real home. The damaged cache is filled by ``pip download`` (pip 26.3 for
``http-v2/``, pip 23.2.1 for the legacy ``http/``) and then damaged in every way issue 4 names.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from support import cache
from support.guarded import REPORT_VARIABLE, summary_block
from support.index import LoopbackIndex
from support.runner import ExtraEnv, describe, hermetic_env, pip_download
from support.users import run_unprivileged, world_readable_tmp
from support.venvs import Venv, VenvFactory, find_python
from support.wheels import DEFAULT_PACKAGES, BuiltWheel

pytestmark = pytest.mark.e2e

PIP = "26.3"
LEGACY_PIP = "23.2.1"
PYTHON = "3.11"
PROJECTS = list(DEFAULT_PACKAGES)
CLI_TIMEOUT = 120.0
TWO_HOURS = 2 * 3600


# -- running the command -------------------------------------------------------------------------


@dataclass(frozen=True)
class Home:
    """A test's private home: ``HOME``, state and cache dirs the commands may touch."""

    root: Path

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def history_file(self) -> Path:
        return self.state / "pip-cache-guard" / "history.jsonl"

    def env(self, extra: ExtraEnv | None = None) -> dict[str, str | None]:
        """``extra_env`` for the harness runners: our home, no inherited XDG dirs."""
        self.home.mkdir(parents=True, exist_ok=True)
        env: dict[str, str | None] = {
            "HOME": str(self.home),
            "XDG_STATE_HOME": str(self.state),
            "XDG_CACHE_HOME": None,
            "XDG_CONFIG_HOME": None,
        }
        env.update(extra or {})
        return env


def guard_command(venv: Venv, module: bool = False) -> list[str]:
    """The console script, or ``python -m pip_cache_guard``."""
    if module:
        return [str(venv.python), "-m", "pip_cache_guard"]
    return [str(venv.path / "bin" / "pip-cache-guard")]


def run_guard(
    venv: Venv,
    home: Home,
    *args: str,
    extra_env: ExtraEnv | None = None,
    module: bool = False,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*guard_command(venv, module), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        env=hermetic_env(home.env(extra_env)),
        cwd=cwd or home.root,
        timeout=CLI_TIMEOUT,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def json_of(result: subprocess.CompletedProcess[str]) -> Any:
    """The JSON document on stdout; with ``--json`` nothing may go to stderr (no tty here)."""
    assert "Traceback" not in result.stderr, describe(result)
    try:
        document = json.loads(result.stdout)
    except ValueError:
        pytest.fail(f"stdout is not JSON\n{describe(result)}")
    assert result.stderr == "", describe(result)
    return document


def assert_clean_error(result: subprocess.CompletedProcess[str]) -> None:
    """Exit 2 with a one-line ``pip-cache-guard: error:`` message and no traceback."""
    assert result.returncode == 2, describe(result)
    assert "Traceback" not in result.stderr, describe(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pip-cache-guard: error:"), describe(result)
    assert result.stdout == "", describe(result)


# -- looking at the cache ------------------------------------------------------------------------


def tree(root: Path) -> dict[str, tuple[str, bytes | str, float]]:
    """Every file and link under ``root`` (links not followed): kind, content or target, mtime."""
    found: dict[str, tuple[str, bytes | str, float]] = {}
    for directory, subdirs, files in os.walk(root, followlinks=False):
        for name in [*subdirs, *files]:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                found[path] = ("link", os.readlink(path), info.st_mtime)
            elif stat.S_ISREG(info.st_mode):
                with open(path, "rb") as stream:
                    found[path] = ("file", stream.read(), info.st_mtime)
    return found


@dataclass
class DamagedCache:
    """A pip cache after ``damage_everything``, and what ``verify`` must say about each file."""

    root: Path
    outside: Path  # files the cache links point at: never to be touched
    problems: dict[str, str] = field(default_factory=dict)  # path -> kind verify must report
    removed_by_fix: set[str] = field(default_factory=set)  # every file --fix must delete
    unrecognised: set[str] = field(default_factory=set)  # reported, never deleted
    must_be_ok: dict[str, str] = field(default_factory=dict)  # path -> why it is fine
    legacy_entries: int = 0


def wheel_entry(cache_dir: Path, index: LoopbackIndex, wheel: BuiltWheel) -> Path:
    return cache.entry_path(cache_dir, index.file_url(wheel.filename))


def page_entry(cache_dir: Path, index: LoopbackIndex, project: str) -> Path:
    return cache.entry_path(cache_dir, index.project_url(project))


def _age(path: Path, seconds: float) -> None:
    moment = time.time() - seconds
    os.utime(path, (moment, moment))


def damage_everything(
    cache_dir: Path,
    outside: Path,
    index: LoopbackIndex,
    wheels: dict[str, BuiltWheel],
) -> DamagedCache:
    """Damage a cache filled with all six projects (http-v2) and alpha + bravo (legacy http/)."""
    d = DamagedCache(cache_dir, outside)
    entry = {p: wheel_entry(cache_dir, index, wheels[p]) for p in PROJECTS}
    page = {p: page_entry(cache_dir, index, p) for p in PROJECTS}

    def damaged_entry(path: Path, kind: str, has_body: bool = True) -> None:
        d.problems[str(path)] = kind
        d.removed_by_fix.add(str(path))
        if has_body:
            d.removed_by_fix.add(str(cache.body_path(path)))

    def damaged_file(path: Path, kind: str) -> None:
        d.problems[str(path)] = kind
        d.removed_by_fix.add(str(path))

    # Metadata damage, one kind per wheel entry (their good .body files go with them).
    cache.garbage(entry["guardtest-alpha"])
    damaged_entry(entry["guardtest-alpha"], "corrupt")
    cache.truncate(entry["guardtest-bravo"], 40)
    damaged_entry(entry["guardtest-bravo"], "corrupt")
    cache.zero_length(entry["guardtest-charlie"])
    damaged_entry(entry["guardtest-charlie"], "corrupt")
    cache.old_format(entry["guardtest-delta"], 2)
    damaged_entry(entry["guardtest-delta"], "stale-format")
    cache.wrong_shape(entry["guardtest-echo"], "list")
    damaged_entry(entry["guardtest-echo"], "corrupt")
    cache.truncate_body(entry["guardtest-foxtrot"], 5000)
    damaged_entry(entry["guardtest-foxtrot"], "body-mismatch")

    # Half entries: a .body without metadata, a metadata without .body.
    page["guardtest-alpha"].unlink()
    damaged_file(cache.body_path(page["guardtest-alpha"]), "orphan")
    cache.body_path(page["guardtest-bravo"]).unlink()
    _age(page["guardtest-bravo"], TWO_HOURS)  # younger, its writer may be between its writes
    damaged_file(page["guardtest-bravo"], "orphan")

    # A valid entry recorded for other request headers: fine, not damage.
    cache.vary_mismatch(page["guardtest-charlie"])
    d.must_be_ok[str(page["guardtest-charlie"])] = "vary mismatch"
    d.must_be_ok[str(page["guardtest-foxtrot"])] = "untouched"

    # Leftovers of interrupted writes, named as pip's adjacent_tmp_file names them.
    old_tmp = page["guardtest-delta"].with_name(page["guardtest-delta"].name + "q8x_2kfa.tmp")
    old_tmp.write_bytes(b"cc=4,\x82")
    _age(old_tmp, TWO_HOURS)
    damaged_file(old_tmp, "leftover-tmp")
    fresh_tmp = page["guardtest-echo"].with_name(page["guardtest-echo"].name + ".bodyz1y2.tmp")
    fresh_tmp.write_bytes(b"half a body")
    d.must_be_ok[str(fresh_tmp)] = "fresh tmp: a pip may be writing it right now"

    # wheels/: one good cached wheel (with pip's origin.json), one that is not a zip file.
    wheel_dir = cache_dir / "wheels" / "3f" / "a1" / "9c" / ("0b" * 28)
    wheel_dir.mkdir(parents=True)
    good_wheel = wheel_dir / wheels["guardtest-alpha"].filename
    shutil.copyfile(wheels["guardtest-alpha"].path, good_wheel)
    (wheel_dir / "origin.json").write_text('{"url": "file:///src/alpha"}')
    d.must_be_ok[str(good_wheel)] = "a readable wheel"
    bad_wheel = wheel_dir / "x.whl"
    bad_wheel.write_bytes(b"this is not a zip archive\n" * 40)
    damaged_file(bad_wheel, "bad-wheel")

    # A file verify does not know: reported, kept, not fatal.
    notes = cache_dir / "http-v2" / "NOTES.txt"
    notes.write_text("someone left notes here\n")
    d.unrecognised.add(str(notes))

    # Links out of the cache, dressed as an entry, a directory and a wheel: never followed.
    outside.mkdir(parents=True, exist_ok=True)
    victim = outside / "victim"
    victim.write_bytes(b"garbage that must survive")
    link_entry = cache.entry_path(cache_dir, "http://127.0.0.1:1/linked/")
    link_entry.parent.mkdir(parents=True, exist_ok=True)
    link_entry.symlink_to(victim)
    d.unrecognised.add(str(link_entry))
    decoy = cache.entry_path(outside / "victim-dir", "http://127.0.0.1:1/decoy/")
    decoy.parent.mkdir(parents=True)
    decoy.write_bytes(b"not an entry")
    free_name = next(c for c in "0123456789abcdef" if not (cache_dir / "http-v2" / c).exists())
    linked_dir = cache_dir / "http-v2" / free_name
    linked_dir.symlink_to(decoy.parents[4], target_is_directory=True)  # <victim-dir>/http-v2/h0
    d.unrecognised.add(str(linked_dir))
    (wheel_dir / "linked-1.0-py3-none-any.whl").symlink_to(victim)
    d.unrecognised.add(str(wheel_dir / "linked-1.0-py3-none-any.whl"))

    # Legacy http/ of pip 23.2.1: stale as a whole, its entries still diagnosed one by one.
    legacy = cache.list_entries(cache_dir, legacy=True)
    d.legacy_entries = len(legacy)
    legacy_damaged = cache.entry_path(
        cache_dir, index.file_url(wheels["guardtest-bravo"].filename), legacy=True
    )
    cache.truncate(legacy_damaged, 100)
    damaged_entry(legacy_damaged, "corrupt", has_body=False)
    for path in legacy:
        if path != legacy_damaged:
            d.must_be_ok[str(path)] = "good legacy entry"
    return d


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def venv(make_venv: VenvFactory) -> Venv:
    return make_venv(find_python(PYTHON), PIP, guard=True)


@pytest.fixture(scope="module")
def legacy_venv(make_venv: VenvFactory) -> Venv:
    return make_venv(find_python(PYTHON), LEGACY_PIP, guard=False)


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / "user")


@pytest.fixture
def damaged(
    venv: Venv,
    legacy_venv: Venv,
    cache_dir: Path,
    index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
    home: Home,
    tmp_path: Path,
) -> DamagedCache:
    result = pip_download(venv, cache_dir, index, PROJECTS, home.env())
    assert result.returncode == 0, describe(result)
    result = pip_download(
        legacy_venv, cache_dir, index, ["guardtest-alpha", "guardtest-bravo"], home.env()
    )
    assert result.returncode == 0, describe(result)
    assert cache.list_entries(cache_dir, legacy=True), "pip 23.2.1 did not fill http/"
    return damage_everything(cache_dir, tmp_path / "outside", index, guardtest_wheels)


# -- verify: the whole damaged cache -------------------------------------------------------------


def test_verify_names_exactly_the_damaged_files_and_changes_nothing(
    venv: Venv, home: Home, damaged: DamagedCache
) -> None:
    before = tree(damaged.root)
    outside_before = tree(damaged.outside)

    result = run_guard(venv, home, "verify", "--cache-dir", str(damaged.root), "--json")

    assert result.returncode == 1, describe(result)
    report = json_of(result)
    found = {finding["path"]: finding["kind"] for finding in report["problems"]}
    assert found == damaged.problems
    assert all(finding["action"] == "found" for finding in report["problems"])
    assert {finding["path"] for finding in report["unrecognised"]} == damaged.unrecognised
    assert all(finding["action"] == "kept" for finding in report["unrecognised"])
    for path, why in damaged.must_be_ok.items():
        assert path not in found, f"{why} reported as a problem"
    assert report["remaining"] == len(damaged.problems)
    assert report["errors"] == []
    assert report["fixed"] is False and report["bytes_freed"] == 0
    assert report["cache_dir"] == str(damaged.root)
    assert report["wheels"] == 2  # the good one and x.whl; the link is not counted
    legacy = report["legacy_http"]
    assert legacy["path"] == str(damaged.root / "http")
    assert legacy["stale"] is True
    assert legacy["entries"] == damaged.legacy_entries
    assert legacy["bytes"] > 0

    assert tree(damaged.root) == before, "verify without --fix changed the cache"
    assert tree(damaged.outside) == outside_before


def test_verify_text_goes_to_stderr_and_tells_what_is_stale(
    venv: Venv, home: Home, damaged: DamagedCache
) -> None:
    result = run_guard(venv, home, "verify", "--cache-dir", str(damaged.root))

    assert result.returncode == 1, describe(result)
    assert result.stdout == ""
    text = result.stderr
    assert "Traceback" not in text
    assert f"damaged: {len(damaged.problems)} " in text, text
    assert f"not recognised (left alone): {len(damaged.unrecognised)}" in text, text
    assert "stale:" in text and "reclaimable" in text, text
    assert shlex.join(["verify", "--cache-dir", str(damaged.root), "--fix"]) in text


def test_verify_fix_removes_exactly_the_damaged_files(
    venv: Venv, home: Home, damaged: DamagedCache
) -> None:
    before = tree(damaged.root)
    outside_before = tree(damaged.outside)

    fixed = run_guard(venv, home, "verify", "--cache-dir", str(damaged.root), "--fix", "--json")

    assert fixed.returncode == 0, describe(fixed)
    report = json_of(fixed)
    assert {f["path"]: f["action"] for f in report["problems"]} == dict.fromkeys(
        damaged.problems, "deleted"
    )
    assert report["remaining"] == 0 and report["fixed"] is True
    after = tree(damaged.root)
    assert set(before) - set(after) == damaged.removed_by_fix
    assert set(after) <= set(before)
    assert {path: before[path] for path in after} == after, "a kept file was modified"
    assert report["bytes_freed"] == sum(
        len(before[path][1]) for path in damaged.removed_by_fix if before[path][0] == "file"
    )
    for path in [*damaged.unrecognised, *damaged.must_be_ok]:
        assert path in after, f"{path} was deleted"
    assert tree(damaged.outside) == outside_before, "--fix reached through a link"

    again = run_guard(venv, home, "verify", "--cache-dir", str(damaged.root), "--json")
    assert again.returncode == 0, describe(again)
    second = json_of(again)
    assert second["problems"] == [] and second["remaining"] == 0
    assert {f["path"] for f in second["unrecognised"]} == damaged.unrecognised
    assert second["legacy_http"]["stale"] is True
    assert tree(damaged.root) == after

    text = run_guard(venv, home, "verify", "--cache-dir", str(damaged.root))
    assert text.returncode == 0, describe(text)
    assert "damaged: none" in text.stderr


def test_pip_uses_the_cache_verify_fixed(
    venv: Venv, home: Home, damaged: DamagedCache, index: LoopbackIndex
) -> None:
    """Unguarded pip exits 2 on this cache (a wrong-shape entry); after --fix it works."""
    fixed = run_guard(venv, home, "verify", "--cache-dir", str(damaged.root), "--fix")
    assert fixed.returncode == 0, describe(fixed)
    index.reset_log()

    result = pip_download(venv, damaged.root, index, PROJECTS, home.env({"PIP_CACHE_GUARD": "0"}))

    assert result.returncode == 0, describe(result)
    fetched = {r.path for r in index.requests if r.path.startswith("/files/")}
    assert len(fetched) == len(PROJECTS)  # every wheel entry was damaged and removed


def advised_fix(text: str) -> str:
    """The command line verify's text advises (between backticks) to fix what it found."""
    (line,) = [line for line in text.splitlines() if line.strip().startswith("run `")]
    return line.split("`")[1]


@pytest.mark.parametrize("where", ["default", "elsewhere"])
def test_verify_advises_a_fix_that_run_as_printed_fixes_the_cache_it_checked(
    venv: Venv,
    home: Home,
    index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
    tmp_path: Path,
    where: str,
) -> None:
    """Both caches are damaged; the advice for the one checked names it (or nothing, for pip's
    default) and, run as printed, fixes it and only it."""
    caches = {"default": home.home / ".cache" / "pip", "elsewhere": tmp_path / "elsewhere cache"}
    entries = {}
    for name, root in caches.items():
        assert pip_download(venv, root, index, PROJECTS[:1], home.env()).returncode == 0
        entries[name] = cache.entry_path(
            root, index.file_url(guardtest_wheels[PROJECTS[0]].filename)
        )
        cache.truncate(entries[name], -5)
    chosen = [] if where == "default" else ["--cache-dir", str(caches[where])]

    found = run_guard(venv, home, "verify", *chosen)

    assert found.returncode == 1, describe(found)
    advice = advised_fix(found.stderr)
    assert advice == shlex.join(["pip-cache-guard", "verify", *chosen, "--fix"])
    path = f"{venv.path / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    as_printed = subprocess.run(
        shlex.split(advice),
        capture_output=True,
        text=True,
        env=hermetic_env(home.env({"PATH": path})),
        cwd=home.root,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    assert as_printed.returncode == 0, describe(as_printed)
    assert {name: entry.exists() for name, entry in entries.items()} == {
        name: name != where for name in caches
    }


# -- verify: errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("module", [False, True], ids=["script", "module"])
def test_verify_missing_directory_is_a_one_line_error(
    venv: Venv, home: Home, tmp_path: Path, module: bool
) -> None:
    missing = tmp_path / "no-such-cache"
    result = run_guard(venv, home, "verify", "--cache-dir", str(missing), module=module)
    assert_clean_error(result)
    assert str(missing) in result.stderr

    from_env = run_guard(
        venv, home, "verify", "--json", extra_env={"PIP_CACHE_DIR": str(missing)}, module=module
    )
    assert_clean_error(from_env)

    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    assert_clean_error(run_guard(venv, home, "verify", "--cache-dir", str(a_file), "--fix"))


def test_verify_on_a_directory_that_holds_no_cache_says_so(
    venv: Venv, home: Home, tmp_path: Path
) -> None:
    caches = tmp_path / "caches"  # the parent of a pip cache, as ~/.cache is
    http_dir = caches / "pip" / "http-v2"  # the directory the summary names as "cache:"
    (http_dir / "0" / "1").mkdir(parents=True)
    (caches / "notes.txt").write_text("not a cache")

    for as_json in ([], ["--json"]):
        result = run_guard(venv, home, "verify", "--cache-dir", str(caches), *as_json)
        assert_clean_error(result)
        assert f"{caches} holds no pip cache" in result.stderr
        assert f"{caches / 'pip'} is one" in result.stderr
    # http-v2 itself is a CacheControl directory: checked, not refused (issue 9).
    assert run_guard(venv, home, "verify", "--cache-dir", str(http_dir)).returncode == 0


@pytest.fixture(scope="module")
def shared_root() -> Iterator[Path]:
    """A 0755 directory for what ``nobody`` must reach (pytest's tmp dirs are 0700)."""
    yield from world_readable_tmp()


@pytest.fixture(scope="module")
def nobody_venv(shared_root: Path, guard_wheel: Path) -> Venv:
    """A guarded pip 26.3 venv that ``nobody`` can run (the shared venvs sit in 0700 dirs)."""
    factory = VenvFactory(shared_root / "venvs", shared_root / "wheelhouse", lambda: guard_wheel)
    venv = factory(find_python(PYTHON), PIP, guard=True)
    for directory, _subdirs, _files in os.walk(shared_root):
        os.chmod(directory, 0o755)
    return venv


def _make_readable(root: Path) -> None:
    for directory, _subdirs, files in os.walk(root):
        os.chmod(directory, 0o755)
        for name in files:
            os.chmod(os.path.join(directory, name), 0o644)


@pytest.mark.parametrize("blocked", ["file", "directory"])
def test_verify_unreadable_part_exits_2_without_traceback(
    nobody_venv: Venv,
    shared_root: Path,
    index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
    blocked: str,
) -> None:
    cache_dir = shared_root / f"cache-{blocked}"
    home = Home(shared_root / f"home-{blocked}")
    result = pip_download(
        nobody_venv, cache_dir, index, ["guardtest-alpha", "guardtest-bravo"], home.env()
    )
    assert result.returncode == 0, describe(result)
    _make_readable(cache_dir)
    entry = wheel_entry(cache_dir, index, guardtest_wheels["guardtest-alpha"])
    target = entry if blocked == "file" else entry.parent
    target.chmod(0o600 if blocked == "file" else 0o700)
    before = tree(cache_dir)
    env = hermetic_env(home.env())
    command = [str(nobody_venv.path / "bin" / "pip-cache-guard"), "verify", "--cache-dir"]

    try:
        as_json = run_unprivileged([*command, str(cache_dir), "--json"], env=env)
        as_text = run_unprivileged([*command, str(cache_dir), "--fix"], env=env)
    finally:
        target.chmod(0o644 if blocked == "file" else 0o755)

    for outcome in (as_json, as_text):
        assert outcome.returncode == 2, describe(outcome)
        assert "Traceback" not in outcome.stderr, describe(outcome)
    errors = json.loads(as_json.stdout)["errors"]
    expected = "cannot read" if blocked == "file" else "cannot list"
    assert len(errors) == 1 and errors[0].startswith(expected), errors
    assert str(target) in errors[0]
    assert f"error: {expected}" in as_text.stderr, describe(as_text)
    assert tree(cache_dir) == before


# -- verify: finding the cache the way pip does --------------------------------------------------


def _pip_cache_dir(venv: Venv, home: Home, env: ExtraEnv, cwd: Path) -> str:
    result = subprocess.run(
        [str(venv.python), "-m", "pip", "cache", "dir"],
        capture_output=True,
        text=True,
        env=hermetic_env(home.env(env)),
        cwd=cwd,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, describe(result)
    return result.stdout.strip()


def _config(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


LOCATE_CASES = [
    "default-home",
    "xdg-cache-home",
    "relative-xdg-cache-home-ignored",
    "pip-cache-dir",
    "pip-cache-dir-tilde",
    "config-file",
    "config-file-tilde",
    "pip-cache-dir-beats-config-file",
    "user-config",
    "config-file-beats-user-config",
    "config-file-hides-user-config",
    "empty-cache-dir-in-config-file",
    "cache-section-beats-global",
    "install-section-is-not-pip-cache-s",
    "empty-no-cache-dir-in-config-file",
]


def _locate_env(case: str, root: Path, home: Home) -> dict[str, str | None]:
    """The environment of one case; writes its config files (PIP_CONFIG_FILE's, the user's)."""
    conf = root / "conf" / "pip.conf"
    conf_cache = f"[global]\ncache-dir = {root / 'conf-cache'}\n"
    user_cache = f"[global]\ncache-dir = {root / 'user-cache'}\n"
    # case: (environment, text of the PIP_CONFIG_FILE file, text of the user's pip.conf)
    cases: dict[str, tuple[dict[str, str | None], str | None, str | None]] = {
        "default-home": ({}, None, None),
        "xdg-cache-home": ({"XDG_CACHE_HOME": str(root / "xdg-cache")}, None, None),
        "relative-xdg-cache-home-ignored": ({"XDG_CACHE_HOME": "relative/xdg"}, None, None),
        "pip-cache-dir": ({"PIP_CACHE_DIR": str(root / "env-cache")}, None, None),
        "pip-cache-dir-tilde": ({"PIP_CACHE_DIR": "~/tilde-cache"}, None, None),
        "config-file": ({"PIP_CONFIG_FILE": str(conf)}, conf_cache, None),
        "config-file-tilde": (
            {"PIP_CONFIG_FILE": str(conf)},
            "[global]\ncache-dir = ~/conf-tilde\n",
            None,
        ),
        "pip-cache-dir-beats-config-file": (
            {"PIP_CONFIG_FILE": str(conf), "PIP_CACHE_DIR": str(root / "env-cache")},
            conf_cache,
            None,
        ),
        "user-config": ({"PIP_CONFIG_FILE": str(root / "no-such.conf")}, None, user_cache),
        "config-file-beats-user-config": ({"PIP_CONFIG_FILE": str(conf)}, conf_cache, user_cache),
        "empty-cache-dir-in-config-file": (
            {"PIP_CONFIG_FILE": str(conf)},
            "[global]\ncache-dir =\n",
            None,
        ),
        "cache-section-beats-global": (
            {"PIP_CONFIG_FILE": str(conf)},
            f"[cache]\ncache-dir = {root / 'cache-section'}\n",
            user_cache,
        ),
        "install-section-is-not-pip-cache-s": (
            {"PIP_CONFIG_FILE": str(conf)},
            f"[install]\ncache-dir = {root / 'install-section'}\n",
            None,
        ),
        "empty-no-cache-dir-in-config-file": (  # pip drops the empty value: the cache stays on
            {"PIP_CONFIG_FILE": str(conf)},
            "[global]\nno-cache-dir =\n",
            None,
        ),
        "config-file-hides-user-config": (
            {"PIP_CONFIG_FILE": str(conf)},
            "[global]\ntimeout = 30\n",
            user_cache,
        ),
    }
    env, conf_text, user_text = cases[case]
    if conf_text is not None:
        _config(conf, conf_text)
    if user_text is not None:
        _config(home.home / ".config" / "pip" / "pip.conf", user_text)
    return env


@pytest.mark.parametrize("case", LOCATE_CASES)
def test_verify_finds_the_cache_pip_cache_dir_names(
    venv: Venv, home: Home, tmp_path: Path, case: str
) -> None:
    env = _locate_env(case, tmp_path, home)
    pip_says = _pip_cache_dir(venv, home, env, cwd=tmp_path)
    assert os.path.isabs(pip_says)
    Path(pip_says).mkdir(parents=True, exist_ok=True)

    result = run_guard(venv, home, "verify", "--json", extra_env=env, cwd=tmp_path)

    assert result.returncode == 0, describe(result)
    assert json_of(result)["cache_dir"] == pip_says
    doctor = run_guard(venv, home, "doctor", "--json", extra_env=env, cwd=tmp_path)
    assert json_of(doctor)["cache_dir"] == pip_says
    assert json_of(doctor)["cache_disabled"] is False  # `pip cache dir` fails when it is


def test_cache_dir_behind_a_link_is_the_same_directory(
    venv: Venv, home: Home, tmp_path: Path
) -> None:
    """pip prints the resolved path; verify keeps the link's path: the same directory."""
    real = tmp_path / "big-disk" / "pip"
    real.mkdir(parents=True)
    link = tmp_path / "cache-link"
    link.symlink_to(real, target_is_directory=True)
    env = {"PIP_CACHE_DIR": str(link)}

    pip_says = _pip_cache_dir(venv, home, env, cwd=tmp_path)
    result = run_guard(venv, home, "verify", "--json", extra_env=env)

    assert result.returncode == 0, describe(result)
    assert os.path.samefile(json_of(result)["cache_dir"], pip_says)


# -- doctor --------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", [False, True], ids=["script", "module"])
def test_doctor_reports_the_hook_installed_and_active(venv: Venv, home: Home, module: bool) -> None:
    result = run_guard(venv, home, "doctor", "--json", module=module)

    report = json_of(result)
    assert report["hook_installed"] is True
    assert report["hook_active"] is True, report
    assert report["inactive_reason"] is None
    assert report["pip_version"] == PIP
    assert report["patch_point"]
    assert (
        report["healing_points"].items()
        >= {
            "pip._internal.cache": "SimpleWheelCache.get",  # pip 23.2+ only warn on origin.json
            "pip._internal.index.collector": "_get_simple_response",
            "pip._internal.index.package_finder": "PackageFinder.process_project_url",
        }.items()
    )
    assert all(Path(path).is_file() for path in report["hook_files"])
    assert report["cache_dir"] == str(home.home / ".cache" / "pip")
    assert report["history_file"] == str(home.history_file)
    assert result.returncode == (1 if report["low_disk"] else 0), describe(result)


@pytest.mark.parametrize("value", ["0", "off", "false", "NO"])
def test_doctor_reports_the_hook_inactive_under_the_kill_switch(
    venv: Venv, home: Home, value: str
) -> None:
    result = run_guard(venv, home, "doctor", "--json", extra_env={"PIP_CACHE_GUARD": value})

    assert result.returncode == 1, describe(result)
    report = json_of(result)
    assert report["hook_installed"] is True
    assert report["hook_active"] is False
    assert "PIP_CACHE_GUARD" in report["inactive_reason"]

    text = run_guard(venv, home, "doctor", extra_env={"PIP_CACHE_GUARD": value})
    assert text.stdout == ""
    assert "hook active: no" in text.stderr, describe(text)


def test_doctor_reports_the_hook_inactive_without_wrapt(
    tmp_path_factory: pytest.TempPathFactory, guard_wheel: Path, home: Home
) -> None:
    root = tmp_path_factory.mktemp("no-wrapt")
    factory = VenvFactory(root / "venvs", root / "wheelhouse", lambda: guard_wheel)
    venv = factory(find_python(PYTHON), PIP, guard=True)
    assert json_of(run_guard(venv, home, "doctor", "--json"))["hook_active"] is True

    uninstall = subprocess.run(
        [str(venv.python), "-m", "pip", "uninstall", "--yes", "wrapt"],
        capture_output=True,
        text=True,
        env=hermetic_env(home.env()),
        timeout=CLI_TIMEOUT,
        check=False,
    )
    assert uninstall.returncode == 0, describe(uninstall)

    result = run_guard(venv, home, "doctor", "--json")
    assert result.returncode == 1, describe(result)
    report = json_of(result)
    assert report["hook_installed"] is True
    assert report["hook_active"] is False
    assert "wrapt" in report["inactive_reason"], report
    # pip itself still works, silently unguarded.
    pip = subprocess.run(
        [str(venv.python), "-m", "pip", "cache", "dir"],
        capture_output=True,
        text=True,
        env=hermetic_env(home.env()),
        timeout=CLI_TIMEOUT,
        check=False,
    )
    assert pip.returncode == 0 and pip.stderr == "", describe(pip)


# -- history and the recurrence advice -----------------------------------------------------------


def test_history_lists_incidents_newest_first_without_credentials(
    venv: Venv,
    home: Home,
    cache_dir: Path,
    auth_index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
) -> None:
    user, token = auth_index.credentials or ("", "")
    assert user and token and f"{user}:{token}@" in auth_index.url
    projects = ["guardtest-echo", "guardtest-foxtrot"]
    fill = pip_download(venv, cache_dir, auth_index, projects, home.env())
    assert fill.returncode == 0, describe(fill)
    assert not home.history_file.exists()
    echo = wheel_entry(cache_dir, auth_index, guardtest_wheels["guardtest-echo"])
    foxtrot = wheel_entry(cache_dir, auth_index, guardtest_wheels["guardtest-foxtrot"])

    runs = [
        (cache.zero_length, echo, "corrupt"),
        (cache.garbage, foxtrot, "corrupt"),
        (cache.old_format, echo, "stale-format"),
    ]
    summaries = []
    for damage, entry, _kind in runs:
        damage(entry)
        result = pip_download(venv, cache_dir, auth_index, projects, home.env())
        assert result.returncode == 0, describe(result)
        assert "pip-cache-guard:" in result.stderr, describe(result)
        assert "pip-cache-guard:" not in result.stdout
        summaries.append(result.stderr)
        assert user not in result.stderr and token not in result.stderr
        time.sleep(1.1)  # distinct timestamps (history shows seconds)

    recurring = "damaged 3 times in the past 7 days"
    assert recurring not in summaries[0] and recurring not in summaries[1]
    assert recurring in summaries[2], summaries[2]
    # The disk is named only once damage came back, and then in one line.
    assert "disk" not in summaries[0] and "disk" not in summaries[1], summaries[:2]
    assert [line for line in summaries[2].splitlines() if "disk" in line] == [
        line for line in summaries[2].splitlines() if recurring in line
    ], summaries[2]

    history_text = home.history_file.read_text()
    assert user not in history_text and token not in history_text

    result = run_guard(venv, home, "history", "--json")
    assert result.returncode == 0, describe(result)
    incidents = json_of(result)["incidents"]
    assert len(incidents) == 3
    assert [i["time"] for i in incidents] == sorted((i["time"] for i in incidents), reverse=True)
    seen = [(i["events"][0]["cache_file"], i["events"][0]["kind"]) for i in incidents]
    assert seen == [(str(entry), kind) for _damage, entry, kind in reversed(runs)]
    for incident in incidents:
        (event,) = incident["events"]
        assert event["action"] == "deleted"
        assert event["url"].startswith(f"http://127.0.0.1:{auth_index.port}/files/")
        assert incident["pip_version"] == PIP
    assert user not in result.stdout and token not in result.stdout

    text = run_guard(venv, home, "history")
    assert text.returncode == 0 and text.stdout == "", describe(text)
    assert "3 incidents, newest first" in text.stderr
    assert user not in text.stderr and token not in text.stderr

    doctor = json_of(run_guard(venv, home, "doctor", "--json"))
    assert doctor["recent_incidents"] == incidents


def test_a_token_in_a_direct_links_query_is_never_shown_reported_or_kept(
    venv: Venv,
    home: Home,
    cache_dir: Path,
    index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
) -> None:
    """A signed or tokenised link (``…/x.whl?TOKEN``, no ``=``): the token is a query field."""
    token = "SECRET_TOKEN_abc123"
    url = f"{index.file_url(guardtest_wheels['guardtest-echo'].filename)}?{token}"
    report = home.root / "report.json"
    fill = pip_download(venv, cache_dir, index, [url], home.env())
    assert fill.returncode == 0, describe(fill)
    cache.garbage(cache.entry_path(cache_dir, url))

    env = home.env({REPORT_VARIABLE: str(report)})
    result = pip_download(venv, cache_dir, index, [url], env, extra_args=["-v"])

    assert result.returncode == 0, describe(result)
    block = "\n".join(summary_block(result.stderr))  # pip's own -v lines show the URL: not ours
    assert "guardtest_echo-1.0-py3-none-any.whl?***" in block, block
    assert token not in block
    assert token not in report.read_text() and token not in home.history_file.read_text()


def test_history_is_empty_and_clean_before_any_incident(venv: Venv, home: Home) -> None:
    result = run_guard(venv, home, "history", "--json")
    assert result.returncode == 0, describe(result)
    assert json_of(result) == {"schema": 1, "incidents": []}
    text = run_guard(venv, home, "history", module=True)
    assert text.returncode == 0 and text.stdout == ""
    assert "no incidents recorded" in text.stderr


# -- the command line itself ---------------------------------------------------------------------


@pytest.mark.parametrize("module", [False, True], ids=["script", "module"])
@pytest.mark.parametrize("command", [[], ["verify"], ["doctor"], ["history"]], ids=str)
def test_help_exits_0(venv: Venv, home: Home, module: bool, command: list[str]) -> None:
    result = run_guard(venv, home, *command, "--help", module=module)
    assert result.returncode == 0, describe(result)
    assert "usage: pip-cache-guard" in result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("module", [False, True], ids=["script", "module"])
@pytest.mark.parametrize(
    "args", [["bogus"], [], ["verify", "--no-such-flag"], ["history", "extra"]], ids=str
)
def test_usage_errors_exit_2(venv: Venv, home: Home, module: bool, args: list[str]) -> None:
    result = run_guard(venv, home, *args, module=module)
    assert result.returncode == 2, describe(result)
    assert "Traceback" not in result.stderr
    assert "usage: pip-cache-guard" in result.stderr
    assert result.stdout == ""


def test_version_is_the_same_for_script_and_module(venv: Venv, home: Home) -> None:
    script = run_guard(venv, home, "--version")
    module = run_guard(venv, home, "--version", module=True)
    assert script.returncode == module.returncode == 0
    assert script.stdout == module.stdout
    assert script.stdout.startswith("pip-cache-guard ")


@pytest.mark.parametrize("command", ["verify", "doctor", "history"])
def test_json_on_stdout_and_text_on_stderr(
    venv: Venv, home: Home, cache_dir: Path, index: LoopbackIndex, command: str
) -> None:
    filled = pip_download(venv, cache_dir, index, ["guardtest-alpha"], home.env())
    assert filled.returncode == 0, describe(filled)
    args = [command, *(["--cache-dir", str(cache_dir)] if command != "history" else [])]

    for module in (False, True):
        as_json = run_guard(venv, home, *args, "--json", module=module)
        assert as_json.returncode == 0, describe(as_json)
        document = json_of(as_json)
        assert isinstance(document, dict) and document["schema"] == 1
        as_text = run_guard(venv, home, *args, module=module)
        assert as_text.returncode == 0, describe(as_text)
        assert as_text.stdout == "", describe(as_text)
        assert as_text.stderr.startswith(f"pip-cache-guard {command}"), describe(as_text)
