"""Damage pip would trip over on every run, healed in the same run: built wheels, index pages.

Each test fills a cache with a real pip run, damages one file the way users find it damaged, runs
pip again with a JSON report (it must exit 0 with the original files, and the guard must name the
entry), then once more: silent, and served from the cache.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from pip_cache_guard.diagnose import wheel_problem

from support import cache
from support.guarded import (
    KILL_SWITCH,
    PREFIX,
    GuardFiles,
    outcomes,
    read_report,
    summary_block,
)
from support.index import JSON_TYPE, LoopbackIndex
from support.runner import describe, pip_download, run_pip
from support.venvs import Venv, VenvFactory, find_python
from support.wheels import BUILD_FAILS, BuiltSdist, BuiltWheel, build_payload_sdist

ORIGIN_WARNING = "Ignoring invalid cache entry origin file"


@pytest.fixture(scope="module")
def sdist(index_server: LoopbackIndex, tmp_path_factory: pytest.TempPathFactory) -> BuiltSdist:
    """``guardtest-built``: served as an sdist only, so pip builds it and caches the wheel."""
    built = build_payload_sdist(tmp_path_factory.mktemp("sdists"), "guardtest-built")
    index_server.add_wheel(built.path)  # any file: listed on its project's page
    return built


@pytest.fixture
def files(tmp_path: Path) -> GuardFiles:
    return GuardFiles(tmp_path)


def install_built(
    venv: Venv, cache_dir: Path, index: LoopbackIndex, target: Path, env: dict[str, str | None]
) -> tuple[str, str, int]:
    args = ["install", "--no-deps", "--progress-bar", "off", "--target", str(target)]
    result = run_pip(venv, [*args, "guardtest-built"], cache_dir, index, env)
    return result.stdout, result.stderr, result.returncode


def installed_files(target: Path, sdist: BuiltSdist) -> dict[str, bytes]:
    return {name: (target / name).read_bytes() for name in sdist.installed}


def cached_wheels(cache_dir: Path, sdist: BuiltSdist) -> list[Path]:
    return sorted((cache_dir / "wheels").rglob(sdist.wheel_filename))


def build_into_cache(
    venv: Venv, cache_dir: Path, index: LoopbackIndex, sdist: BuiltSdist, target: Path,
    files: GuardFiles,
) -> Path:  # fmt: skip
    """Install the sdist once, so that pip builds it and caches the wheel; that wheel."""
    out, err, code = install_built(venv, cache_dir, index, target, files.env())
    assert code == 0 and "Traceback" not in err, f"{out}\n{err}"
    [wheel] = cached_wheels(cache_dir, sdist)
    return wheel


def _cut_in_half(wheel: Path) -> None:
    cache.truncate(wheel, wheel.stat().st_size // 2)


def _damage_origin(wheel: Path) -> None:
    origin = wheel.with_name("origin.json")
    assert origin.is_file(), "this pip writes no origin.json"
    origin.write_bytes(origin.read_bytes()[:20])  # cut mid-document: not JSON


BUILT_WHEEL_CASES = [
    pytest.param("26.3", _cut_in_half, "not a readable zip file", id="pip26.3-truncated"),
    pytest.param("25.1.1", _cut_in_half, "not a readable zip file", id="pip25.1.1-truncated"),
    pytest.param("24.0", _cut_in_half, "not a readable zip file", id="pip24.0-truncated"),
    pytest.param("23.2.1", _cut_in_half, "not a readable zip file", id="pip23.2.1-truncated"),
    pytest.param("21.3.1", _cut_in_half, "not a readable zip file", id="pip21.3.1-truncated"),
]


@pytest.mark.e2e
@pytest.mark.parametrize(("pip", "damage", "reason"), BUILT_WHEEL_CASES)
def test_a_damaged_built_wheel_is_deleted_and_pip_builds_it_again_in_the_same_run(
    pip: str,
    damage: Callable[[Path], None],
    reason: str,
    make_venv: VenvFactory,
    cache_dir: Path,
    index: LoopbackIndex,
    sdist: BuiltSdist,
    files: GuardFiles,
    tmp_path: Path,
) -> None:
    venv = make_venv(find_python("3.11"), pip, guard=True)
    wheel = build_into_cache(venv, cache_dir, index, sdist, tmp_path / "fill", files)
    damage(wheel)
    if pip == "26.3" and damage is _cut_in_half:  # pip alone fails on this, run after run
        off_env = files.env(**{KILL_SWITCH: "0"})
        _, off_err, off_code = install_built(venv, cache_dir, index, tmp_path / "off", off_env)
        assert off_code != 0, off_err

    out, err, code = install_built(
        venv, cache_dir, index, tmp_path / "healed", files.env(report="damaged")
    )

    assert code == 0 and "Traceback" not in err, f"{out}\n{err}"
    assert installed_files(tmp_path / "healed", sdist) == sdist.installed
    assert ORIGIN_WARNING not in err
    block = summary_block(err)
    assert f"  - {sdist.wheel_filename}: bad-wheel, rebuilt" in block, block
    assert f"  cache: {cache_dir / 'wheels'}" in block, block  # not the HTTP cache beside it
    report = read_report(files.report("damaged"))
    [event] = report["events"]
    assert (event["kind"], event["action"], event["cache_file"], event["cache_dir"]) == (
        "bad-wheel",
        "rebuilt",
        str(wheel),
        str(cache_dir / "wheels"),
    )
    assert reason in event["reason"] and sdist.filename in event["reason"], event
    assert outcomes(report) == {event["url"]: ("bad-wheel", "rebuilt")}
    [rebuilt] = cached_wheels(cache_dir, sdist)
    assert wheel_problem(str(rebuilt)) is None
    if pip != "21.3.1":
        assert json.loads(rebuilt.with_name("origin.json").read_text())["url"].endswith(
            sdist.filename
        )

    out, err, code = install_built(
        venv, cache_dir, index, tmp_path / "again", files.env(report="again")
    )

    assert code == 0 and err == "", f"{out}\n{err}"
    assert "Building wheel" not in out, out  # the cached wheel was used
    assert installed_files(tmp_path / "again", sdist) == sdist.installed
    assert read_report(files.report("again"))["events"] == []
    assert cached_wheels(cache_dir, sdist) == [rebuilt]


@pytest.mark.e2e
def test_a_damaged_built_wheel_whose_build_then_fails_is_deleted_not_rebuilt(
    make_venv: VenvFactory,
    cache_dir: Path,
    index: LoopbackIndex,
    sdist: BuiltSdist,
    files: GuardFiles,
    tmp_path: Path,
) -> None:
    """Issue 15 item 13: "built again" only once pip's build produced the wheel."""
    venv = make_venv(find_python("3.11"), "26.3", guard=True)
    wheel = build_into_cache(venv, cache_dir, index, sdist, tmp_path / "fill", files)
    _cut_in_half(wheel)
    env = files.env(report="failed", **{BUILD_FAILS: "1"})

    out, err, code = install_built(venv, cache_dir, index, tmp_path / "failed", env)

    assert code != 0 and "this build fails, as the test asked" in err, f"{out}\n{err}"
    block = summary_block(err)
    assert f"  - {sdist.wheel_filename}: bad-wheel, deleted" in block, block
    assert "built again" not in "\n".join(block), block
    report = read_report(files.report("failed"))
    assert outcomes(report) == {report["events"][0]["url"]: ("bad-wheel", "deleted")}
    assert cached_wheels(cache_dir, sdist) == []


ORIGIN_CASES = [
    pytest.param("26.3", False, id="pip26.3-warns"),
    pytest.param("23.2.1", False, id="pip23.2.1-warns"),
    pytest.param("23.1.2", True, id="pip23.1.2-stops"),
    pytest.param("22.3.1", True, id="pip22.3.1-stops"),
]


@pytest.mark.e2e
@pytest.mark.parametrize(("pip", "pip_stops"), ORIGIN_CASES)
def test_a_damaged_origin_json_never_costs_the_good_wheel_beside_it(
    pip: str,
    pip_stops: bool,
    make_venv: VenvFactory,
    cache_dir: Path,
    index: LoopbackIndex,
    sdist: BuiltSdist,
    files: GuardFiles,
    tmp_path: Path,
) -> None:
    """Issue 15 item 12: pip 23.2+ warn about a damaged origin.json and use the wheel (the
    guard leaves both alone); 22.2 - 23.1 stop on it (the guard deletes that file alone, and
    pip uses the wheel). Nothing is built again: that fails offline or without a compiler."""
    venv = make_venv(find_python("3.11"), pip, guard=True)
    wheel = build_into_cache(venv, cache_dir, index, sdist, tmp_path / "fill", files)
    origin = wheel.with_name("origin.json")
    _damage_origin(wheel)
    damaged_origin, wheel_bytes, wheel_inode = (
        origin.read_bytes(),
        wheel.read_bytes(),
        wheel.stat().st_ino,
    )
    no_build = {BUILD_FAILS: "1"}  # a build would fail: the cached wheel must be used
    off_env = files.env(**{KILL_SWITCH: "0"}, **no_build)
    _, off_err, off_code = install_built(venv, cache_dir, index, tmp_path / "off", off_env)
    assert (off_code != 0) is pip_stops, off_err  # what this pip does without the guard

    env = files.env(report="damaged", **no_build)
    out, err, code = install_built(venv, cache_dir, index, tmp_path / "used", env)

    assert code == 0 and "Traceback" not in err, f"{out}\n{err}"
    assert "Building wheel" not in out, out
    assert installed_files(tmp_path / "used", sdist) == sdist.installed
    assert (wheel.read_bytes(), wheel.stat().st_ino) == (wheel_bytes, wheel_inode)
    report = read_report(files.report("damaged"))
    if pip_stops:
        block = summary_block(err)
        assert "  - origin.json: bad-wheel, deleted" in block, block
        [event] = report["events"]
        assert (event["kind"], event["action"], event["cache_file"]) == (
            "bad-wheel", "deleted", str(origin),
        )  # fmt: skip
        assert "the wheel itself is good and is used" in event["reason"], event
        assert not origin.exists()
    else:
        assert ORIGIN_WARNING in err and PREFIX not in err, err  # pip's own warning, and only it
        assert report["events"] == []
        assert origin.read_bytes() == damaged_origin

    out, err, code = install_built(venv, cache_dir, index, tmp_path / "again", env)

    assert code == 0 and "Building wheel" not in out, f"{out}\n{err}"
    assert (PREFIX in err, ORIGIN_WARNING in err) == (False, not pip_stops), err


def _flip_page_byte(entry: Path, legacy: bool) -> None:
    """Bit rot in the middle of a cached page's body, its size unchanged: not UTF-8 any more."""
    if legacy:  # pip <= 23.2: the body sits inside the metadata file
        document = cache.read_entry(entry)
        body = bytearray(document["response"]["body"])
        body[len(body) // 2] = 0xFF
        document["response"]["body"] = bytes(body)
        cache.write_entry(entry, document)
        return
    body_file = cache.body_path(entry)
    data = bytearray(body_file.read_bytes())
    data[len(data) // 2] = 0xFF
    body_file.write_bytes(bytes(data))


@pytest.mark.e2e
@pytest.mark.parametrize("pip", ["26.3", "23.2.1"])
def test_a_cached_json_index_page_pip_cannot_parse_is_fetched_once_more(
    pip: str,
    make_venv: VenvFactory,
    cache_dir: Path,
    index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
    files: GuardFiles,
    tmp_path: Path,
) -> None:
    venv = make_venv(find_python("3.11"), pip, guard=True)
    legacy = pip == "23.2.1"
    index.json_pages = True
    project, wheel = "guardtest-alpha", guardtest_wheels["guardtest-alpha"]
    page = cache.entry_path(cache_dir, index.project_url(project), legacy=legacy)
    # Stored without the guard: no record of its sha256, so the parse is what fails (a page the
    # guard stored fails its digest first: tests/test_digests_e2e.py).
    fill = pip_download(venv, cache_dir, index, [project], files.env(**{KILL_SWITCH: "0"}))
    assert fill.returncode == 0, describe(fill)
    assert cache.read_entry(page)["response"]["headers"]["Content-Type"] == JSON_TYPE
    _flip_page_byte(page, legacy)
    if not legacy:  # pip alone fails on this, run after run
        off = pip_download(venv, cache_dir, index, [project], files.env(**{KILL_SWITCH: "0"}))
        assert off.returncode == 2 and "UnicodeDecodeError" in off.stderr, describe(off)
    index.reset_log()
    dest = tmp_path / "healed"

    healed = pip_download(venv, cache_dir, index, [project], files.env(report="damaged"), dest=dest)

    assert healed.returncode == 0 and "Traceback" not in healed.stderr, describe(healed)
    assert (dest / wheel.filename).read_bytes() == wheel.path.read_bytes()
    assert f"  - {project}/: bad-page, refetched" in summary_block(healed.stderr)
    report = read_report(files.report("damaged"))
    key = cache.cache_key(index.project_url(project))
    assert outcomes(report) == {key: ("bad-page", "refetched")}
    assert report["events"][0]["cache_file"] == str(page)
    assert "UnicodeDecodeError" in report["events"][0]["reason"]
    page_path = f"/simple/{project}/"
    # The damaged copy came from the cache (fresh, or revalidated by a 304: pip 26 no longer
    # forces revalidation); then pip fetched the page once more, in full.
    assert index.count(page_path) - index.count(page_path, status=304) == 1, index.counts()
    assert index.count(page_path, status=200) == 1, index.counts()
    assert index.count("/files/") == 0, index.counts()  # the wheel still came from the cache
    index.reset_log()

    again = pip_download(venv, cache_dir, index, [project], files.env(report="again"))

    assert again.returncode == 0 and again.stderr == "", describe(again)
    assert read_report(files.report("again"))["events"] == []
    assert index.count(page_path, status=200) == 0, index.counts()  # served from the cache


@pytest.mark.e2e
def test_an_index_that_is_down_for_the_refetch_gives_pips_own_error_and_no_loop(
    make_venv: VenvFactory,
    cache_dir: Path,
    index: LoopbackIndex,
    files: GuardFiles,
) -> None:
    venv = make_venv(find_python("3.11"), "26.3", guard=True)
    index.json_pages = True
    project = "guardtest-alpha"
    page = cache.entry_path(cache_dir, index.project_url(project))
    unguarded = files.env(**{KILL_SWITCH: "0"})  # no record: the parse is what fails
    assert pip_download(venv, cache_dir, index, [project], unguarded).returncode == 0
    _flip_page_byte(page, legacy=False)
    index.reset_log()
    index.down = True

    result = pip_download(
        venv, cache_dir, index, [project], files.env(report="down"), extra_args=["--retries", "0"]
    )

    assert result.returncode == 1, describe(result)  # pip's "no matching distribution"
    assert "Traceback" not in result.stderr, describe(result)
    assert "No matching distribution found" in result.stderr, describe(result)
    key = cache.cache_key(index.project_url(project))
    # No page was served: deleted, not "fetched again" (issue 15 item 4)
    block = summary_block(result.stderr)
    assert f"  - {project}/: bad-page, deleted" in block, block
    assert "fetched again" not in "\n".join(block), block
    assert outcomes(read_report(files.report("down"))) == {key: ("bad-page", "deleted")}
    assert index.count(f"/simple/{project}/") == 1, index.counts()  # one retry, no loop
    assert not page.exists() and not cache.body_path(page).exists()  # stays deleted


@pytest.mark.e2e
def test_a_page_the_index_itself_serves_unparsable_is_not_cache_damage(
    make_venv: VenvFactory,
    cache_dir: Path,
    index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
    files: GuardFiles,
) -> None:
    """Issue 15 item 3: the cached copy was faithful; the page fetched afresh fails the same
    way, run after run. That is the index's doing (``index-mismatch``), never counted as damage."""
    venv = make_venv(find_python("3.11"), "26.3", guard=True)
    project = "guardtest-alpha"
    good = json.dumps({"meta": {"api-version": "1.0"}, "name": project, "files": []}).encode()
    index.substitute_page(project, good[:10] + b"\xff" + good[10:])  # not UTF-8
    key = cache.cache_key(index.project_url(project))
    first = pip_download(venv, cache_dir, index, [project], files.env())
    assert first.returncode != 0 and "UnicodeDecodeError" in first.stderr, describe(first)
    assert PREFIX not in first.stderr  # from the network: pip's own error, nothing to say

    runs = [
        pip_download(venv, cache_dir, index, [project], files.env(report=str(n))) for n in range(3)
    ]

    for n, result in enumerate(runs):
        assert result.returncode != 0 and "UnicodeDecodeError" in result.stderr, describe(result)
        block = summary_block(result.stderr)
        assert block[0] == (
            "pip-cache-guard: 1 file failed again as fetched afresh from the index "
            "(the cache was not the cause)"
        ), block
        assert f"  - {project}/: index-mismatch, refetched" in block, block
        assert "times in the past 7 days" not in result.stderr, describe(result)
        assert outcomes(read_report(files.report(str(n)))) == {key: ("index-mismatch", "refetched")}
    history = files.history_lines()
    assert [event["kind"] for line in history for event in line["events"]] == ["index-mismatch"] * 3
