"""The harness itself, proven against real pip with NO guard installed.

These tests pin down the behaviour the guard's own tests build on: what the loopback index serves,
that pip caches it where ``support.cache`` says, and how unguarded pip reacts to each kind of damage
the damage helpers produce.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from support import cache
from support.index import LoopbackIndex
from support.runner import describe, hermetic_env, pip_download, run_pip
from support.venvs import DEFAULT_PYTHON, Venv, VenvFactory, find_python
from support.wheels import DEFAULT_PACKAGES, BuiltWheel

PIP = "26.3"
LEGACY_PIP = "23.2.1"
PROJECTS = list(DEFAULT_PACKAGES)
WARNING = "Cache entry deserialization failed"


@pytest.fixture(scope="module")
def venv(make_venv: VenvFactory) -> Venv:
    return make_venv(find_python(DEFAULT_PYTHON), PIP, guard=False)


def fill(venv: Venv, cache_dir: Path, index: LoopbackIndex) -> None:
    """One successful download of every project, then a clean request log."""
    result = pip_download(venv, cache_dir, index, PROJECTS)
    assert result.returncode == 0, describe(result)
    index.reset_log()


def wheel_entry(cache_dir: Path, index: LoopbackIndex, wheel: BuiltWheel) -> Path:
    return cache.entry_path(cache_dir, index.file_url(wheel.filename))


# -- the index and the wheels, without pip ----------------------------------------------------


def test_index_serves_pep503_with_cache_headers(
    index: LoopbackIndex, guardtest_wheels: dict[str, BuiltWheel]
) -> None:
    alpha = guardtest_wheels["guardtest-alpha"]
    with urllib.request.urlopen(index.project_url("guardtest_Alpha")) as response:
        page = response.read().decode()
        headers = response.headers
    assert f'href="../../files/{alpha.filename}#sha256={alpha.sha256}"' in page
    assert headers["Cache-Control"] == "max-age=600, public"
    assert headers["Content-Type"].startswith("text/html")
    assert headers["Date"] and headers["ETag"]
    assert int(headers["Content-Length"]) == len(page.encode())

    url = index.file_url(alpha.filename)
    with urllib.request.urlopen(url) as response:
        assert response.read() == alpha.path.read_bytes()
        etag = response.headers["ETag"]
    revalidate = urllib.request.Request(url, headers={"If-None-Match": etag})
    with pytest.raises(urllib.error.HTTPError) as not_modified:
        urllib.request.urlopen(revalidate)
    assert not_modified.value.code == 304
    ranged = urllib.request.Request(url, headers={"Range": "bytes=100-", "If-Range": etag})
    with urllib.request.urlopen(ranged) as response:
        assert response.status == 206
        assert response.read() == alpha.path.read_bytes()[100:]
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(index.project_url("no-such-project"))
    assert missing.value.code == 404

    assert index.count("/files/") == 3
    assert index.count("/files/", status=304) == 1
    assert index.count("/simple/") == 2
    assert index.errors == []


def test_auth_index_requires_credentials(auth_index: LoopbackIndex) -> None:
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(auth_index.project_url("guardtest-alpha"))
    assert denied.value.code == 401
    assert auth_index.url == f"http://guard-user:s3cr3t-t0ken@127.0.0.1:{auth_index.port}/simple/"
    token = base64.b64encode(":".join(auth_index.credentials or ()).encode()).decode()
    allowed = urllib.request.Request(
        auth_index.project_url("guardtest-alpha"), headers={"Authorization": f"Basic {token}"}
    )
    with urllib.request.urlopen(allowed) as response:
        assert response.status == 200


def test_wheels_are_well_formed(guardtest_wheels: dict[str, BuiltWheel]) -> None:
    assert set(guardtest_wheels) == set(DEFAULT_PACKAGES)
    for project, wheel in guardtest_wheels.items():
        module = project.replace("-", "_")
        assert wheel.filename == f"{module}-1.0-py3-none-any.whl"
        # Random payload does not compress: the wheel is about as big as asked.
        assert DEFAULT_PACKAGES[project] < wheel.size < DEFAULT_PACKAGES[project] + 4096
        with zipfile.ZipFile(wheel.path) as archive:
            assert archive.testzip() is None
            record = archive.read(f"{module}-1.0.dist-info/RECORD").decode().splitlines()
            for line in record:
                name, digest, size = line.rsplit(",", 2)
                if not digest:
                    continue
                data = archive.read(name)
                expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
                assert digest == "sha256=" + expected.decode()
                assert int(size) == len(data)


def test_hermetic_env_drops_pip_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", "http://example.invalid/simple/")
    monkeypatch.setenv("PIP_CACHE_GUARD", "0")
    monkeypatch.setenv("PYTHONPATH", "/nowhere")
    env = hermetic_env({"PIP_CACHE_GUARD_REPORT": "/tmp/r.json", "HOME": None})
    assert "PIP_INDEX_URL" not in env and "PIP_CACHE_GUARD" not in env
    assert "PYTHONPATH" not in env and "HOME" not in env
    assert env["PIP_CACHE_GUARD_REPORT"] == "/tmp/r.json"
    assert env["PIP_CONFIG_FILE"] == os.devnull


def test_cache_key_matches_cachecontrol() -> None:
    assert cache.cache_key("HTTP://User:Tok@127.0.0.1:8/simple/x/#frag") == (
        "http://127.0.0.1:8/simple/x/"
    )
    assert cache.cache_key("http://h:1") == "http://h:1/"
    assert cache.cache_key("http://h/f.whl?a=1#sha256=00") == "http://h/f.whl?a=1"
    path = cache.entry_path(Path("/c"), "http://h/f.whl#sha256=00")
    digest = hashlib.sha224(b"http://h/f.whl").hexdigest()
    assert path == Path("/c/http-v2", *digest[:5], digest)


# -- real pip 26.3, no guard --------------------------------------------------------------------


@pytest.mark.e2e
def test_first_run_fills_http_v2(
    venv: Venv,
    cache_dir: Path,
    index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
) -> None:
    result = pip_download(venv, cache_dir, index, PROJECTS)
    assert result.returncode == 0, describe(result)
    assert WARNING not in result.stderr

    expected = set()
    for project, wheel in guardtest_wheels.items():
        page = cache.entry_path(cache_dir, index.project_url(project))
        entry = wheel_entry(cache_dir, index, wheel)
        expected |= {page, entry}
        assert page.is_file() and cache.body_path(page).is_file(), project
        assert cache.body_path(entry).read_bytes() == wheel.path.read_bytes()
        stored = cache.read_entry(entry)
        assert stored["response"]["status"] == 200
        assert stored["response"]["body"] == b""  # http-v2 keeps the body beside it
        assert stored["response"]["headers"]["Content-Length"] == str(wheel.size)
        assert stored["vary"] == {}
    assert set(cache.list_entries(cache_dir)) == expected
    assert not cache.cache_root(cache_dir, legacy=True).exists()
    assert index.count("/files/") == len(PROJECTS)


@pytest.mark.e2e
def test_second_run_is_served_from_cache(venv: Venv, cache_dir: Path, index: LoopbackIndex) -> None:
    fill(venv, cache_dir, index)
    before = cache.snapshot(cache_dir)

    result = pip_download(venv, cache_dir, index, PROJECTS)
    assert result.returncode == 0, describe(result)
    assert index.count("/files/") == 0, index.counts()
    assert result.stdout.count("Using cached") == len(PROJECTS)
    # pip >= 26 (no --refresh-package) takes fresh index pages from the cache, too.
    assert index.requests == []
    assert cache.snapshot(cache_dir) == before

    # Forced revalidation: the pages come back as 304s, the files still from the cache.
    result = pip_download(
        venv, cache_dir, index, PROJECTS, extra_args=["--refresh-package", ":all:"]
    )
    assert result.returncode == 0, describe(result)
    assert index.count("/simple/", status=304) == len(PROJECTS), index.counts()
    assert index.count("/files/") == 0, index.counts()


@pytest.mark.e2e
def test_garbage_entry_warns_and_is_fetched_again(
    venv: Venv,
    cache_dir: Path,
    index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
) -> None:
    fill(venv, cache_dir, index)
    alpha = guardtest_wheels["guardtest-alpha"]
    entry = wheel_entry(cache_dir, index, alpha)
    cache.garbage(entry)
    others = {
        p: b for p, b in cache.snapshot(cache_dir).items() if not p.name.startswith(entry.name)
    }

    result = pip_download(venv, cache_dir, index, PROJECTS)
    assert result.returncode == 0, describe(result)
    assert WARNING in result.stderr, describe(result)
    assert index.counts() == {("GET", f"/files/{alpha.filename}"): 1}
    after = cache.snapshot(cache_dir)
    assert {p: after[p] for p in others} == others  # nothing else was touched
    assert cache.read_entry(entry)["response"]["status"] == 200  # pip rewrote the entry


DamageFn = Callable[[Path], None]
WARN_DAMAGE: dict[str, DamageFn] = {
    "garbage": cache.garbage,
    "zero_length": cache.zero_length,
    "truncate": lambda path: cache.truncate(path, 40),
    "old_format": cache.old_format,
    "vary_mismatch": cache.vary_mismatch,
}


@pytest.mark.e2e
@pytest.mark.parametrize("kind", sorted(WARN_DAMAGE))
def test_metadata_damage_makes_pip_warn(
    kind: str,
    venv: Venv,
    cache_dir: Path,
    index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
) -> None:
    fill(venv, cache_dir, index)
    bravo = guardtest_wheels["guardtest-bravo"]
    WARN_DAMAGE[kind](wheel_entry(cache_dir, index, bravo))

    result = pip_download(venv, cache_dir, index, ["guardtest-bravo"])
    assert result.returncode == 0, describe(result)
    # cached_request and then conditional_headers each load the entry: two warnings.
    assert result.stderr.count(WARNING) == 2, describe(result)
    assert index.count(f"/files/{bravo.filename}") == 1


@pytest.mark.e2e
@pytest.mark.parametrize("shape", ["list", "no-response"])
def test_wrong_shape_makes_pip_exit_2_every_run(
    shape: str,
    venv: Venv,
    cache_dir: Path,
    index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
) -> None:
    fill(venv, cache_dir, index)
    entry = wheel_entry(cache_dir, index, guardtest_wheels["guardtest-charlie"])
    cache.wrong_shape(entry, shape)
    damaged = entry.read_bytes()

    for _ in range(2):
        result = pip_download(venv, cache_dir, index, ["guardtest-charlie"])
        assert result.returncode == 2, describe(result)
        assert "Traceback" in result.stderr
    assert entry.read_bytes() == damaged  # pip never heals it
    assert index.count("/files/") == 0


@pytest.mark.e2e
def test_truncated_body_is_resumed_by_pip_26(
    venv: Venv,
    cache_dir: Path,
    index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
) -> None:
    fill(venv, cache_dir, index)
    delta = guardtest_wheels["guardtest-delta"]
    entry = wheel_entry(cache_dir, index, delta)
    cache.truncate_body(entry, 5000)

    result = pip_download(venv, cache_dir, index, ["guardtest-delta"])
    assert result.returncode == 0, describe(result)
    assert WARNING not in result.stderr  # the loader does not notice a short body
    assert "resume" in result.stderr.lower(), describe(result)
    ranged = [r for r in index.requests if "Range" in r.headers]
    assert [(r.status, r.headers["Range"]) for r in ranged] == [(206, "bytes=5000-")]
    assert cache.body_path(entry).read_bytes() == delta.path.read_bytes()


@pytest.mark.e2e
def test_authenticated_index_caches_under_the_bare_url(
    venv: Venv,
    cache_dir: Path,
    auth_index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
) -> None:
    result = pip_download(venv, cache_dir, auth_index, ["guardtest-echo"])
    assert result.returncode == 0, describe(result)
    assert auth_index.requests and all(
        r.headers["authorization"] == "yes" for r in auth_index.requests
    )
    echo = guardtest_wheels["guardtest-echo"]
    assert wheel_entry(cache_dir, auth_index, echo).is_file()
    assert cache.entry_path(cache_dir, auth_index.url + "guardtest-echo/").is_file()

    denied = run_pip(
        venv,
        ["download", "--no-deps", "-d", str(cache_dir.parent / "dl"), "guardtest-foxtrot"],
        cache_dir,
        auth_index.base_url + "/simple/",
    )
    assert denied.returncode != 0, describe(denied)


@pytest.mark.e2e
def test_downloaded_wheels_install(
    venv: Venv, cache_dir: Path, index: LoopbackIndex, tmp_path: Path
) -> None:
    target = tmp_path / "target"
    result = run_pip(
        venv,
        ["install", "--no-deps", "--target", str(target), "guardtest-alpha"],
        cache_dir,
        index,
    )
    assert result.returncode == 0, describe(result)
    payload = target / "guardtest_alpha" / "payload.bin"
    assert payload.stat().st_size == DEFAULT_PACKAGES["guardtest-alpha"]
    check = subprocess.run(
        [str(venv.python), "-c", "import guardtest_alpha; print(guardtest_alpha.__version__)"],
        env=hermetic_env({"PYTHONPATH": str(target)}),
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.stdout.strip() == "1.0", check.stderr


# -- legacy pip: the http/ directory ----------------------------------------------------------


@pytest.mark.e2e
def test_legacy_pip_uses_http_dir(
    make_venv: VenvFactory,
    cache_dir: Path,
    index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
) -> None:
    legacy = make_venv(find_python(DEFAULT_PYTHON), LEGACY_PIP, guard=False)
    result = pip_download(legacy, cache_dir, index, ["guardtest-alpha", "guardtest-bravo"])
    assert result.returncode == 0, describe(result)

    assert not cache.cache_root(cache_dir).exists()
    entries = cache.list_entries(cache_dir, legacy=True)
    assert len(entries) == 4
    assert not any(
        p.name.endswith(".body") for p in cache.cache_root(cache_dir, legacy=True).rglob("*")
    )
    alpha = guardtest_wheels["guardtest-alpha"]
    entry = cache.entry_path(cache_dir, index.file_url(alpha.filename), legacy=True)
    assert entry in entries
    assert cache.read_entry(entry)["response"]["body"] == alpha.path.read_bytes()

    index.reset_log()
    again = pip_download(legacy, cache_dir, index, ["guardtest-alpha", "guardtest-bravo"])
    assert again.returncode == 0, describe(again)
    assert index.count("/files/") == 0, index.counts()


@pytest.mark.e2e
def test_index_down_warm_cache_still_serves_but_damage_fails(
    venv: Venv,
    cache_dir: Path,
    index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
) -> None:
    fill(venv, cache_dir, index)
    index.down = True
    offline = ["--retries", "0"]
    result = pip_download(venv, cache_dir, index, PROJECTS, extra_args=offline)
    assert result.returncode == 0, describe(result)  # fresh pages and files: no request at all
    assert index.requests == []

    cache.garbage(wheel_entry(cache_dir, index, guardtest_wheels["guardtest-echo"]))
    result = pip_download(venv, cache_dir, index, ["guardtest-echo"], extra_args=offline)
    assert result.returncode != 0, describe(result)
    assert WARNING in result.stderr
    assert index.count("/files/", status=503) == 1, index.counts()
