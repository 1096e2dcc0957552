"""The full damage suite: real pip, with the guard installed, against a cache damaged every way.

One test run per (Python, pip): fill the cache with a real ``pip download`` of the six projects,
damage entries each in a different way, run pip again with a JSON report, and check exit code,
stderr, the report and every file on disk; a third run must be silent and served from the cache.
The baseline test runs the same kind of damage with the kill switch set: pip then fails, which
proves that these tests can fail and that the guard is what makes them pass.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import msgpack
import pytest

from pip_cache_guard.diagnose import diagnose

from support import cache
from support.guarded import (
    KILL_SWITCH,
    PREFIX,
    GuardFiles,
    assert_clean_exit,
    outcomes,
    read_report,
    summary_block,
)
from support.index import LoopbackIndex
from support.runner import describe, pip_download
from support.venvs import Venv, VenvFactory, find_python, new_python_params
from support.wheels import DEFAULT_PACKAGES, BuiltWheel

PROJECTS = list(DEFAULT_PACKAGES)

# (python, pip): the newest and oldest of every cache generation, and each interpreter; on 3.14+
# every pip that starts there.
CONFIGS = [
    pytest.param("3.11", "26.3", id="py3.11-pip26.3"),
    pytest.param("3.9", "25.3", id="py3.9-pip25.3"),
    pytest.param("3.11", "25.1.1", id="py3.11-pip25.1.1"),
    pytest.param("3.11", "24.0", id="py3.11-pip24.0"),
    pytest.param("3.11", "23.3.2", id="py3.11-pip23.3.2"),
    pytest.param("3.13", "26.3", id="py3.13-pip26.3"),
    pytest.param("3.12", "25.3", id="py3.12-pip25.3"),
    pytest.param("3.10", "24.0", id="py3.10-pip24.0"),
    pytest.param("3.11", "23.2.1", id="py3.11-pip23.2.1-legacy"),
    pytest.param("3.11", "21.3.1", id="py3.11-pip21.3.1-legacy"),
    *new_python_params(),
]


@dataclass(frozen=True)
class Damage:
    """One way to damage one entry, and what the guard must report for it (None: no event)."""

    label: str
    project: str
    page: bool  # the project's index page rather than its wheel
    apply: Callable[[Path], None]
    kind: str | None
    action: str | None
    separate_body: bool = False  # only meaningful for pip >= 23.3 (``.body`` files)


def _remove_body(entry: Path) -> None:
    cache.body_path(entry).unlink()


DAMAGES = [
    Damage("garbage", "guardtest-alpha", False, cache.garbage, "corrupt", "deleted"),
    Damage(
        "truncated metadata",
        "guardtest-bravo",
        False,
        lambda path: cache.truncate(path, 40),
        "corrupt",
        "deleted",
    ),
    Damage(
        "msgpack list (crashes pip)",
        "guardtest-charlie",
        False,
        lambda path: cache.wrong_shape(path, "list"),
        "corrupt",
        "deleted",
    ),
    Damage(
        "body truncated to 5,000 bytes",
        "guardtest-delta",
        False,
        lambda path: cache.truncate_body(path, 5000),
        "body-mismatch",
        "deleted",
        separate_body=True,
    ),
    Damage(
        "status stored as text (loads, then crashes pip)",
        "guardtest-echo",
        False,
        cache.wrong_type,
        "corrupt",
        "deleted",
    ),
    Damage("zero length", "guardtest-alpha", True, cache.zero_length, "corrupt", "deleted"),
    Damage("cc=2 format", "guardtest-bravo", True, cache.old_format, "stale-format", "deleted"),
    Damage(
        "dict without response (crashes pip)",
        "guardtest-charlie",
        True,
        lambda path: cache.wrong_shape(path, "no-response"),
        "corrupt",
        "deleted",
    ),
    Damage("vary mismatch", "guardtest-delta", True, cache.vary_mismatch, "vary-mismatch", "kept"),
    Damage(
        "missing .body (a silent miss)",
        "guardtest-foxtrot",
        True,
        _remove_body,
        None,
        None,
        separate_body=True,
    ),
]


def unpack(payload: bytes) -> object:
    return msgpack.loads(payload, raw=False)


@pytest.fixture
def files(tmp_path: Path) -> GuardFiles:
    return GuardFiles(tmp_path)


@dataclass(frozen=True)
class Scene:
    """A filled cache and how to name its entries."""

    venv: Venv
    cache_dir: Path
    index: LoopbackIndex
    wheels: dict[str, BuiltWheel]

    @property
    def legacy(self) -> bool:
        return cache.is_legacy(self.venv.pip_version)

    def url(self, project: str, page: bool) -> str:
        if page:
            return self.index.project_url(project)
        return self.index.file_url(self.wheels[project].filename)

    def entry(self, project: str, page: bool) -> Path:
        return cache.entry_path(self.cache_dir, self.url(project, page), legacy=self.legacy)

    def all_entries(self) -> list[tuple[str, bool]]:
        return [(project, page) for project in PROJECTS for page in (False, True)]

    def files_of(self, entry: Path) -> list[Path]:
        return [entry] if self.legacy else [entry, cache.body_path(entry)]

    def verdict(self, entry: Path) -> str:
        """What the guard's own classifier says of an entry on disk now."""
        body_size = None if self.legacy else cache.body_path(entry).stat().st_size
        return diagnose(entry.read_bytes(), unpack, None, body_size).kind


def fill(scene: Scene, files: GuardFiles) -> None:
    result = pip_download(scene.venv, scene.cache_dir, scene.index, PROJECTS, files.env())
    assert_clean_exit(result)
    assert result.stderr == "", describe(result)
    assert len(cache.list_entries(scene.cache_dir, legacy=scene.legacy)) == 2 * len(PROJECTS)
    scene.index.reset_log()


@pytest.mark.e2e
@pytest.mark.parametrize(("python", "pip"), CONFIGS)
def test_guarded_pip_survives_every_kind_of_damage_and_heals_the_cache(
    python: str,
    pip: str,
    make_venv: VenvFactory,
    cache_dir: Path,
    index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
    files: GuardFiles,
) -> None:
    scene = Scene(
        make_venv(find_python(python), pip, guard=True), cache_dir, index, guardtest_wheels
    )
    fill(scene, files)
    damages = [d for d in DAMAGES if not (scene.legacy and d.separate_body)]
    damaged = {(d.project, d.page) for d in damages}
    good = [key for key in scene.all_entries() if key not in damaged]
    before = {path: path.read_bytes() for key in good for path in scene.files_of(scene.entry(*key))}
    for damage in damages:
        damage.apply(scene.entry(damage.project, damage.page))

    result = pip_download(scene.venv, cache_dir, index, PROJECTS, files.env(report="damaged"))

    assert_clean_exit(result)
    block = summary_block(result.stderr)
    assert block[0].startswith(PREFIX)
    report = read_report(files.report("damaged"))
    assert report["pip_version"] == pip
    assert report["cache_dir"] == str(cache.cache_root(cache_dir, legacy=scene.legacy))
    assert f"  cache: {report['cache_dir']}" in block
    expected = {
        cache.cache_key(scene.url(d.project, d.page)): (d.kind, d.action)
        for d in damages
        if d.kind is not None
    }
    assert outcomes(report) == expected, describe(result)
    for event in report["events"]:
        entry = next(
            scene.entry(d.project, d.page)
            for d in damages
            if cache.cache_key(scene.url(d.project, d.page)) == event["url"]
        )
        assert event["cache_file"] == str(entry)
        assert event["reason"]
    # Every damaged wheel was downloaded once, in full (no resume of a short body); good ones not.
    for project, wheel in guardtest_wheels.items():
        wanted = 1 if (project, False) in damaged else 0
        assert index.count(f"/files/{wheel.filename}") == wanted, index.counts()
    assert not [r for r in index.requests if "Range" in r.headers], index.requests

    # Good entries: byte-for-byte untouched, except the metadata of index pages that pip itself
    # revalidated (on a 304, CacheControl stores the page again with the refreshed headers).
    revalidated = {r.path for r in index.requests if r.status == 304}
    for project, page in good:
        entry = scene.entry(project, page)
        for path in scene.files_of(entry):
            if path == entry and urlsplit(scene.url(project, page)).path in revalidated:
                assert scene.verdict(entry) == "ok", path
            else:
                assert path.read_bytes() == before[path], f"good cache file changed: {path}"
    # Damaged entries: rewritten by pip's download, valid again.
    for project, page in damaged:
        entry = scene.entry(project, page)
        assert scene.verdict(entry) == "ok", (project, page)
        if not page:
            stored = (
                cache.read_entry(entry)["response"]["body"]
                if scene.legacy
                else cache.body_path(entry).read_bytes()
            )
            assert stored == guardtest_wheels[project].path.read_bytes(), project
    assert len(files.history_lines()) == 1

    index.reset_log()
    again = pip_download(scene.venv, cache_dir, index, PROJECTS, files.env(report="again"))

    assert_clean_exit(again)
    assert again.stderr == "", describe(again)  # no summary, and no warning from pip either
    assert index.count("/files/") == 0, index.counts()
    assert read_report(files.report("again"))["events"] == []
    assert len(files.history_lines()) == 1


@pytest.mark.e2e
@pytest.mark.parametrize(("python", "pip"), [pytest.param("3.14", "26.1", id="py3.14-pip26.1")])
def test_pip_26_1_on_3_14_sending_zstd_keeps_the_entries_another_pip_stored(
    python: str,
    pip: str,
    make_venv: VenvFactory,
    cache_dir: Path,
    index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
    files: GuardFiles,
) -> None:
    """pip#13979: pip 26.1 on 3.14 adds zstd to Accept-Encoding (urllib3 finds compression.zstd),
    so the pages another interpreter's pip stored (pip 26.3 on 3.15 asks for gzip, deflate) no
    longer match their Vary: valid entries, kept, never called damage."""
    index.vary = "Accept-Encoding"
    other = make_venv(find_python("3.15"), "26.3", guard=True)
    filled = pip_download(other, cache_dir, index, PROJECTS, files.env())
    assert_clean_exit(filled)
    pages = {cache.cache_key(index.project_url(project)) for project in PROJECTS}

    result = pip_download(
        make_venv(find_python(python), pip, guard=True),
        cache_dir,
        index,
        PROJECTS,
        files.env(report="zstd"),
    )

    assert_clean_exit(result)
    report = read_report(files.report("zstd"))
    assert outcomes(report) == dict.fromkeys(pages, ("vary-mismatch", "kept")), describe(result)
    assert "damaged cache entr" not in result.stderr, describe(result)


BASELINES = [
    pytest.param(
        "26.3",
        Damage(
            "msgpack list",
            "guardtest-charlie",
            False,
            lambda path: cache.wrong_shape(path, "list"),
            "corrupt",
            "deleted",
        ),
        2,
        id="pip26.3-wrong-shape-exits-2",
    ),
    pytest.param(
        "24.0",
        next(d for d in DAMAGES if d.kind == "body-mismatch"),
        1,
        id="pip24.0-truncated-body-exits-1",
    ),
]


@pytest.mark.e2e
@pytest.mark.parametrize(("pip", "damage", "unguarded_exit"), BASELINES)
def test_kill_switch_shows_the_damage_breaks_pip_and_the_guard_fixes_it(
    pip: str,
    damage: Damage,
    unguarded_exit: int,
    make_venv: VenvFactory,
    cache_dir: Path,
    index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
    files: GuardFiles,
) -> None:
    scene = Scene(
        make_venv(find_python("3.11"), pip, guard=True), cache_dir, index, guardtest_wheels
    )
    fill(scene, files)
    entry = scene.entry(damage.project, damage.page)
    damage.apply(entry)
    damaged = {path: path.read_bytes() for path in scene.files_of(entry)}

    for _ in range(2):  # pip does not heal these by itself: the failure repeats
        off = pip_download(
            scene.venv, cache_dir, index, [damage.project], files.env("off", **{KILL_SWITCH: "0"})
        )
        assert off.returncode == unguarded_exit, describe(off)
        assert "pip-cache-guard" not in off.stderr + off.stdout
        assert not files.report("off").exists()
        assert {path: path.read_bytes() for path in damaged} == damaged

    on = pip_download(scene.venv, cache_dir, index, [damage.project], files.env(report="on"))

    assert_clean_exit(on)
    summary_block(on.stderr)
    expected = {
        cache.cache_key(scene.url(damage.project, damage.page)): (damage.kind, damage.action)
    }
    assert outcomes(read_report(files.report("on"))) == expected
    assert scene.verdict(entry) == "ok"
    assert os.path.getsize(cache.body_path(entry)) == guardtest_wheels[damage.project].size
