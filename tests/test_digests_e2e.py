"""Bit rot no hash can catch, healed in the same run: cached bodies checked against a digest.

Behind an index whose links carry no hash, pip checks nothing: one byte flipped in a cached
wheel (size unchanged) is saved and installed as it is. With the guard, the body is hashed while
pip reads it, against the sha256 the guard recorded when it stored the entry, or, for an entry
stored without the guard, a digest the server sent with the file (Artifactory's
``X-Checksum-Sha256``, RFC 9530's ``Repr-Digest``); a mismatch is evicted and pip's own downloader
fetches the file once more. Real pips, a loopback index, real bit rot.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from support import cache
from support.guarded import GuardFiles, assert_clean_exit, outcomes, read_report, summary_block
from support.index import LoopbackIndex
from support.runner import describe, pip_download, run_pip
from support.venvs import Venv, VenvFactory, find_python, new_python_params
from support.wheels import BuiltWheel

PIPS = ["26.3", "24.0", "21.3.1"]
PROJECT = "guardtest-alpha"
RECORD_SOURCE = "the sha256 pip-cache-guard recorded when the entry was stored"


class Scene:
    """One guarded pip's venv, a cache of the test's own, a no-hash index, the guard's files."""

    def __init__(self, venv: Venv, root: Path, index: LoopbackIndex, wheel: BuiltWheel) -> None:
        self.venv, self.root, self.index, self.wheel = venv, root, index, wheel
        self.cache_dir = root / "pip-cache"
        self.files = GuardFiles(root)
        self.legacy = cache.is_legacy(venv.pip_version)
        self.url = index.file_url(wheel.filename)
        self.entry = cache.entry_path(self.cache_dir, self.url, legacy=self.legacy)

    def download(
        self, report: str, *, guarded: bool = True, extra_args: Sequence[str] = ()
    ) -> subprocess.CompletedProcess[str]:
        env = self.files.env(report=report) | ({} if guarded else {"PIP_CACHE_GUARD": "0"})
        out, projects = self.root / report, [PROJECT]
        return pip_download(
            self.venv, self.cache_dir, self.index, projects, env, dest=out, extra_args=extra_args
        )

    def saved(self, report: str) -> bytes:
        return (self.root / report / self.wheel.filename).read_bytes()


@pytest.fixture
def scene_for(
    make_venv: VenvFactory,
    tmp_path: Path,
    no_hash_index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
) -> Callable[..., Scene]:
    def build(pip: str, python: str = "3.11") -> Scene:
        venv = make_venv(find_python(python), pip, guard=True)
        return Scene(venv, tmp_path, no_hash_index, guardtest_wheels[PROJECT])

    return build


@pytest.mark.e2e
@pytest.mark.parametrize("pip", PIPS)
@pytest.mark.parametrize(
    ("stored_by", "header", "source"),
    [
        ("guard", None, RECORD_SOURCE),
        ("guard", "X-Checksum-Sha256", RECORD_SOURCE),  # the guard's own record comes first
        ("pip", "X-Checksum-Sha256", "the server's X-Checksum-Sha256 header"),
        ("pip", "Repr-Digest", "the server's Repr-Digest header"),
    ],
)
def test_a_rotted_body_behind_a_no_hash_index_is_fetched_again_in_the_same_run(
    pip: str, stored_by: str, header: str | None, source: str, scene_for: Callable[..., Scene]
) -> None:
    scene = scene_for(pip)
    scene.index.digest_header = header
    assert_clean_exit(scene.download("fill", guarded=stored_by == "guard"))
    record = cache.read_entry(scene.entry).get("pip-cache-guard")
    if stored_by == "guard":
        assert record == {"sha256": scene.wheel.sha256, "size": scene.wheel.size}
    else:
        assert record is None
    cache.flip_body_byte(scene.entry, legacy=scene.legacy)
    scene.index.reset_log()

    result = scene.download("heal")

    assert_clean_exit(result)
    assert scene.saved("heal") == scene.wheel.path.read_bytes()  # the original, same size
    assert scene.index.counts().get(("GET", f"/files/{scene.wheel.filename}")) == 1
    block = summary_block(result.stderr)
    assert any(f"{scene.wheel.filename}: bad-body, refetched" in line for line in block), block
    report = read_report(scene.files.report("heal"))
    assert outcomes(report) == {cache.cache_key(scene.url): ("bad-body", "refetched")}
    (event,) = report["events"]
    assert f"does not match {source}" in event["reason"], event
    assert event["digest"] == source, event
    assert any(line.endswith(f"(checked against {source})") for line in block), block
    scene.index.reset_log()
    again = scene.download("again")
    assert_clean_exit(again)
    assert again.stderr == "", describe(again)
    assert scene.index.count("/files/") == 0


@pytest.mark.e2e
@pytest.mark.parametrize("pip", ["26.3", "21.3.1"])
def test_an_entry_with_no_digest_is_left_as_pip_leaves_it(
    pip: str, scene_for: Callable[..., Scene]
) -> None:
    """Stored by a pip without the guard, from a server that sends no digest: nothing says what
    the body should be, so the guard says nothing (and deletes nothing)."""
    scene = scene_for(pip)
    assert_clean_exit(scene.download("fill", guarded=False))
    cache.flip_body_byte(scene.entry, legacy=scene.legacy)
    rotted = cache.stored_body(scene.entry, legacy=scene.legacy)

    result = scene.download("quiet")

    assert_clean_exit(result)
    assert result.stderr == "", describe(result)
    assert scene.saved("quiet") == rotted
    assert hashlib.sha256(rotted).hexdigest() != scene.wheel.sha256


@pytest.mark.e2e
@pytest.mark.parametrize("pip", ["26.3", "24.0"])
def test_a_rotted_body_fetched_on_the_batch_path_is_fetched_again(
    pip: str, scene_for: Callable[..., Scene]
) -> None:
    """PEP 658 metadata first: pip resolves with the ``.metadata`` file, then downloads the
    wheels in a batch (``BatchDownloader`` up to pip 25.0, ``Downloader.batch`` since)."""
    scene = scene_for(pip)
    scene.index.metadata_files = True
    assert_clean_exit(scene.download("fill"))
    assert scene.index.count(f"/files/{scene.wheel.filename}.metadata") == 1
    cache.flip_body_byte(scene.entry, legacy=scene.legacy)
    scene.index.reset_log()

    result = scene.download("heal")

    assert_clean_exit(result)
    assert scene.saved("heal") == scene.wheel.path.read_bytes()
    report = read_report(scene.files.report("heal"))
    assert outcomes(report) == {cache.cache_key(scene.url): ("bad-body", "refetched")}
    assert scene.index.counts().get(("GET", f"/files/{scene.wheel.filename}")) == 1


@pytest.mark.e2e
def test_a_file_the_index_serves_unlike_its_digest_header_is_the_indexs_fault(
    scene_for: Callable[..., Scene],
) -> None:
    """The server's header says one thing and its bytes another: the entry is evicted once, the
    fresh download fails the same digest, and the guard says the cache was not the cause."""
    scene = scene_for("26.3")
    scene.index.digest_header = "X-Checksum-Sha256"  # of the original file, as the link's would be
    assert_clean_exit(scene.download("fill", guarded=False))
    cache.flip_body_byte(scene.entry, legacy=scene.legacy)
    served = bytearray(scene.wheel.path.read_bytes())
    served[len(served) // 3] ^= 0xFF
    scene.index.substitute(scene.wheel.filename, bytes(served))
    scene.index.reset_log()

    result = scene.download("index")

    assert_clean_exit(result)  # no hash to check: pip takes what the index serves
    assert scene.saved("index") == bytes(served)
    assert scene.index.counts().get(("GET", f"/files/{scene.wheel.filename}")) == 1
    block = summary_block(result.stderr)
    assert "the cache was not the cause" in " ".join(block), block
    report = read_report(scene.files.report("index"))
    assert outcomes(report) == {cache.cache_key(scene.url): ("index-mismatch", "refetched")}


@pytest.mark.e2e
@pytest.mark.parametrize("pip", ["26.3", "21.3.1"])
def test_pip_install_of_a_rotted_no_hash_wheel_installs_the_original(
    pip: str, scene_for: Callable[..., Scene]
) -> None:
    """``pip install`` (pip 26.1+ blocks imports once it starts installing)."""
    scene = scene_for(pip)
    assert_clean_exit(scene.download("fill"))
    cache.flip_body_byte(scene.entry, legacy=scene.legacy)
    target = scene.root / "target"

    result = run_pip(
        scene.venv,
        ["install", "--no-deps", "--target", str(target), PROJECT],
        scene.cache_dir,
        scene.index,
        scene.files.env(report="install"),
    )

    assert_clean_exit(result)
    report = read_report(scene.files.report("install"))
    assert outcomes(report) == {cache.cache_key(scene.url): ("bad-body", "refetched")}
    (event,) = report["events"]  # caught by its digest before pip read it (not by a bad CRC)
    assert f"does not match {RECORD_SOURCE}" in event["reason"], event
    with zipfile.ZipFile(scene.wheel.path) as original:
        payload = original.read("guardtest_alpha/payload.bin")
    assert (target / "guardtest_alpha" / "payload.bin").read_bytes() == payload


@pytest.mark.e2e
@pytest.mark.parametrize("pip", ["26.3", "24.0"])
def test_pips_install_report_names_the_sha256_of_the_wheel_it_installed(
    pip: str, scene_for: Callable[..., Scene]
) -> None:
    """pip hashes a no-hash download for ``--report`` before it reads the wheel, where the guard
    fetches a damaged one again: the report must name the bytes installed, not those thrown away."""
    scene = scene_for(pip)
    assert_clean_exit(scene.download("fill"))
    cache.flip_body_byte(scene.entry, legacy=scene.legacy)
    pips_report = scene.root / "pip-report.json"

    result = run_pip(
        scene.venv,
        ["install", "--no-deps", "--target", str(scene.root / "t"), "--report", str(pips_report),
         PROJECT],
        scene.cache_dir,
        scene.index,
        scene.files.env(report="install"),
    )  # fmt: skip

    assert_clean_exit(result)
    assert outcomes(read_report(scene.files.report("install"))) == {
        cache.cache_key(scene.url): ("bad-body", "refetched")
    }
    (installed,) = json.loads(pips_report.read_text())["install"]
    assert installed["download_info"]["archive_info"]["hashes"] == {"sha256": scene.wheel.sha256}


def rotted_name(filename: str) -> str:
    """``filename`` with one bit of its version flipped (``1.0`` -> ``1.1``): a file that does
    not exist, with a version pip prefers."""
    name, version, rest = filename.split("-", 2)
    return f"{name}-{version[:-1]}{chr(ord(version[-1]) ^ 1)}-{rest}"


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("pip", "json_pages"),
    [("26.3", False), ("26.3", True), ("24.0", True), ("24.0", False), ("21.3.1", False)],
)
def test_a_rotted_page_that_still_parses_is_fetched_again_in_the_same_run(
    pip: str, json_pages: bool, scene_for: Callable[..., Scene], tmp_path: Path
) -> None:
    """One bit flipped in a link of a cached page (HTML, or PEP 691 JSON): it still parses, and
    pip alone follows it to a file that does not exist. Guarded, the page fails the sha256 the
    guard recorded when it stored it; pip fetches the page once more and gets the right file.
    pip <= 25.x revalidates the page first (a 304 serves the stored body again, and rewrites its
    metadata: the record is carried over)."""
    scene = scene_for(pip)
    scene.index.json_pages = json_pages
    page = cache.entry_path(scene.cache_dir, scene.index.project_url(PROJECT), legacy=scene.legacy)
    page_path = f"/simple/{PROJECT}/"
    assert_clean_exit(scene.download("fill"))
    record = cache.read_entry(page).get("pip-cache-guard")
    body = cache.stored_body(page, legacy=scene.legacy)
    assert record == {"sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}
    assert (b'"files"' in body) == json_pages
    revalidates = pip != "26.3"
    if revalidates:  # a good page revalidated: the rewritten metadata keeps the record
        scene.index.reset_log()
        assert_clean_exit(scene.download("revalidate"))
        assert scene.index.count(page_path, status=304) == 1, scene.index.counts()
        assert cache.read_entry(page).get("pip-cache-guard") == record
        assert cache.stored_body(page, legacy=scene.legacy) == body
    wrong = rot_page_link(scene, page)
    alone = tmp_path / "alone"  # pip alone, on a copy of the cache: misled, run after run
    shutil.copytree(scene.cache_dir, alone)
    unguarded = pip_download(
        scene.venv, alone, scene.index, [PROJECT], scene.files.env(**{"PIP_CACHE_GUARD": "0"})
    )
    assert unguarded.returncode != 0, describe(unguarded)
    assert scene.index.count(f"/files/{wrong}", status=404) >= 1, scene.index.counts()
    scene.index.reset_log()

    result = scene.download("heal")

    assert_clean_exit(result)
    assert scene.saved("heal") == scene.wheel.path.read_bytes()
    line = f"  - {PROJECT}/: bad-page, refetched (checked against {RECORD_SOURCE})"
    assert line in summary_block(result.stderr), result.stderr
    report = read_report(scene.files.report("heal"))
    key = cache.cache_key(scene.index.project_url(PROJECT))
    assert outcomes(report) == {key: ("bad-page", "refetched")}
    (event,) = report["events"]
    assert f"the cached page does not match {RECORD_SOURCE}" in event["reason"], event
    assert event["digest"] == RECORD_SOURCE, event
    assert event["cache_file"] == str(page)
    # The damaged copy came from the cache (a 304 where pip revalidates); then the page once
    # more, in full; the right file came from the cache, the wrong one was never asked for.
    assert scene.index.count(page_path, status=304) == int(revalidates), scene.index.counts()
    assert scene.index.count(page_path, status=200) == 1, scene.index.counts()
    assert scene.index.count("/files/") == 0, scene.index.counts()
    fresh = cache.read_entry(page).get("pip-cache-guard")
    assert fresh == record  # the page stored afresh is the original, recorded again
    scene.index.reset_log()

    again = scene.download("again")

    assert_clean_exit(again)
    assert again.stderr == "", describe(again)
    assert scene.index.count(page_path, status=200) == 0, scene.index.counts()


def rot_page_link(scene: Scene, page: Path) -> str:
    """Flip one bit of the version in the cached page's link to the wheel; the file it names."""
    wrong = rotted_name(scene.wheel.filename)
    old, new = (f"files/{name}".encode() for name in (scene.wheel.filename, wrong))
    cache.rot_in_body(page, old, new, legacy=scene.legacy)
    return wrong


@pytest.mark.e2e
@pytest.mark.parametrize("pip", ["26.3", "24.0"])
def test_a_rotted_find_links_page_is_fetched_again_before_pip_parses_it(
    pip: str, scene_for: Callable[..., Scene]
) -> None:
    """A ``--find-links`` page over HTTP is cached like an index page, and pip keeps the links it
    parsed from it by URL for the whole run: the damaged page must never be parsed."""
    scene = scene_for(pip)
    url = scene.index.project_url(PROJECT)
    find_links = ["--no-index", "--find-links", url]
    page = cache.entry_path(scene.cache_dir, url, legacy=scene.legacy)
    assert_clean_exit(scene.download("fill", extra_args=find_links))
    wrong = rot_page_link(scene, page)
    scene.index.reset_log()

    result = scene.download("heal", extra_args=find_links)

    assert_clean_exit(result)
    assert scene.saved("heal") == scene.wheel.path.read_bytes()
    report = read_report(scene.files.report("heal"))
    assert outcomes(report) == {cache.cache_key(url): ("bad-page", "refetched")}
    assert scene.index.count(f"/files/{wrong}") == 0, scene.index.counts()
    scene.index.reset_log()
    again = scene.download("again", extra_args=find_links)
    assert_clean_exit(again)
    assert again.stderr == "", describe(again)


@pytest.mark.e2e
def test_a_rotted_page_whose_index_is_down_for_the_refetch_stays_deleted(
    scene_for: Callable[..., Scene],
) -> None:
    """The refetch gets pip's own network handling (an index that is down gives no links): the
    event says deleted, the damaged page is never used, and nothing loops."""
    scene = scene_for("26.3")
    page = cache.entry_path(scene.cache_dir, scene.index.project_url(PROJECT))
    assert_clean_exit(scene.download("fill"))
    wrong = rot_page_link(scene, page)
    scene.index.reset_log()
    scene.index.down = True

    result = scene.download("down", extra_args=["--retries", "0"])

    assert result.returncode == 1 and "Traceback" not in result.stderr, describe(result)
    assert "No matching distribution found" in result.stderr, describe(result)
    block = summary_block(result.stderr)
    assert f"  - {PROJECT}/: bad-page, deleted (checked against {RECORD_SOURCE})" in block, block
    key = cache.cache_key(scene.index.project_url(PROJECT))
    assert outcomes(read_report(scene.files.report("down"))) == {key: ("bad-page", "deleted")}
    assert scene.index.count(f"/simple/{PROJECT}/") == 1, scene.index.counts()
    assert scene.index.count(f"/files/{wrong}") == 0, scene.index.counts()
    assert not page.exists() and not cache.body_path(page).exists()


@pytest.mark.e2e
@pytest.mark.parametrize(("python", "pip"), new_python_params(("26.3",)))
def test_a_rotted_body_is_fetched_again_on_the_newest_pythons(
    python: str, pip: str, scene_for: Callable[..., Scene]
) -> None:
    """Python 3.14 and 3.15 (Debian's builds, run by .ci/pythons): recorded when stored, caught
    while pip reads it, in ``pip download`` and in ``pip install`` (past pip 26.3's barrier)."""
    scene = scene_for(pip, python)
    assert_clean_exit(scene.download("fill"))
    assert cache.read_entry(scene.entry)["pip-cache-guard"]["sha256"] == scene.wheel.sha256
    cache.flip_body_byte(scene.entry, legacy=scene.legacy)

    result = scene.download("heal")

    assert_clean_exit(result)
    assert scene.saved("heal") == scene.wheel.path.read_bytes()
    assert outcomes(read_report(scene.files.report("heal"))) == {
        cache.cache_key(scene.url): ("bad-body", "refetched")
    }
    cache.flip_body_byte(scene.entry, legacy=scene.legacy)
    target = scene.root / "target"
    args = ["install", "--no-deps", "--target", str(target), PROJECT]
    installed = run_pip(
        scene.venv, args, scene.cache_dir, scene.index, scene.files.env(report="install")
    )
    assert_clean_exit(installed)
    assert outcomes(read_report(scene.files.report("install"))) == {
        cache.cache_key(scene.url): ("bad-body", "refetched")
    }
    with zipfile.ZipFile(scene.wheel.path) as original:
        payload = original.read("guardtest_alpha/payload.bin")
    assert (target / "guardtest_alpha" / "payload.bin").read_bytes() == payload
