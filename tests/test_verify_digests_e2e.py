"""``verify --digests``: every cached body hashed against the digest its entry names (issue 17).

Caches filled by real pips (26.3: ``http-v2`` with ``.body`` files; 21.3.1: ``http`` with the body
inside the metadata) from a loopback index whose links carry no hash, with and without the guard,
with and without a digest header from the server; then bit rot, one byte flipped in a body.
``verify`` runs as the console script of the filling venv, and as ``pip cache verify``.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest

from pip_cache_guard import digests, entries, verify
from pip_cache_guard.locate import CacheLocation
from pip_cache_guard.verify import Scan

from support import cache
from support.guarded import GuardFiles, assert_clean_exit
from support.index import LoopbackIndex
from support.runner import describe, hermetic_env, pip_download, run_pip
from support.venvs import Venv, VenvFactory, find_python
from support.wheels import BuiltWheel

PIPS = ["26.3", "21.3.1"]
PROJECTS = ["guardtest-alpha", "guardtest-bravo"]
RECORD_SOURCE = "the sha256 pip-cache-guard recorded when the entry was stored"


class Scene:
    """A venv with a guarded pip, a cache of the test's own and a no-hash index."""

    def __init__(
        self, venv: Venv, root: Path, index: LoopbackIndex, wheels: dict[str, BuiltWheel]
    ) -> None:
        self.venv, self.root, self.index, self.wheels = venv, root, index, wheels
        self.cache_dir = root / "pip-cache"
        self.files = GuardFiles(root)
        self.legacy = cache.is_legacy(venv.pip_version)

    def entry(self, project: str) -> Path:
        url = self.index.file_url(self.wheels[project].filename)
        return cache.entry_path(self.cache_dir, url, legacy=self.legacy)

    def download(self, name: str, *, guarded: bool = True) -> subprocess.CompletedProcess[str]:
        env = self.files.env() | ({} if guarded else {"PIP_CACHE_GUARD": "0"})
        out = self.root / name
        result = pip_download(self.venv, self.cache_dir, self.index, PROJECTS, env, dest=out)
        assert_clean_exit(result)
        return result

    def verify(self, *options: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.venv.path / "bin" / "pip-cache-guard"), "verify"]
        return subprocess.run(
            [*command, "--cache-dir", str(self.cache_dir), *options],
            capture_output=True,
            text=True,
            env=hermetic_env(self.files.env()),
            timeout=120,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def verify_json(self, *options: str, exit_code: int = 0) -> Any:
        result = self.verify("--json", *options)
        assert result.returncode == exit_code, describe(result)
        return json.loads(result.stdout)

    def bodies(self) -> int:
        """Entries holding a body of a 200 response (wheels and index pages)."""
        return sum(
            cache.read_entry(path)["response"]["status"] == 200
            for path in cache.list_entries(self.cache_dir, legacy=self.legacy)
        )


@pytest.fixture
def scene_for(
    make_venv: VenvFactory,
    tmp_path: Path,
    no_hash_index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
) -> Callable[[str], Scene]:
    def build(pip: str) -> Scene:
        venv = make_venv(find_python("3.11"), pip, guard=True)
        return Scene(venv, tmp_path, no_hash_index, guardtest_wheels)

    return build


@pytest.mark.e2e
@pytest.mark.parametrize("pip", PIPS)
def test_a_clean_guarded_cache_has_every_body_verified(
    pip: str, scene_for: Callable[[str], Scene]
) -> None:
    scene = scene_for(pip)
    scene.download("fill")
    bodies = scene.bodies()
    assert bodies >= len(PROJECTS)

    checked = scene.verify_json("--digests")

    assert checked["digests"] == {"verified": bodies, "mismatched": 0, "unverifiable": 0}
    assert checked["problems"] == [] and checked["remaining"] == 0
    plain = scene.verify_json()
    assert "digests" not in plain  # the document of a plain verify is as it was
    assert set(checked) - set(plain) == {"digests"}
    text = scene.verify("--digests")
    assert text.returncode == 0, describe(text)
    assert f"digests: {bodies} bodies hashed, {bodies} match, 0 do not" in text.stderr, text.stderr


@pytest.mark.e2e
@pytest.mark.parametrize("pip", PIPS)
def test_a_flipped_body_byte_is_a_bad_body_and_fix_deletes_exactly_that_entry(
    pip: str, scene_for: Callable[[str], Scene]
) -> None:
    scene = scene_for(pip)
    scene.download("fill")
    entry = scene.entry("guardtest-alpha")
    cache.flip_body_byte(entry, legacy=scene.legacy)
    before = cache.snapshot(scene.cache_dir)

    assert scene.verify_json()["problems"] == []  # without --digests no body is read
    found = scene.verify_json("--digests", exit_code=1)
    (problem,) = found["problems"]
    assert (problem["path"], problem["kind"], problem["action"]) == (
        str(entry),
        "bad-body",
        "found",
    )
    assert RECORD_SOURCE in problem["reason"], problem
    assert found["digests"]["mismatched"] == 1 and found["remaining"] == 1
    text = scene.verify("--digests")
    assert text.returncode == 1 and "bad-body" in text.stderr, describe(text)
    assert "--digests --fix" in text.stderr, describe(text)  # the advice finds it again
    inside_pip = run_pip(
        scene.venv,
        ["cache", "verify", "--digests", "--json"],
        scene.cache_dir,
        None,
        scene.files.env(),
    )
    assert inside_pip.returncode == 1, describe(inside_pip)
    assert [p["path"] for p in json.loads(inside_pip.stdout)["problems"]] == [str(entry)]
    assert cache.snapshot(scene.cache_dir) == before  # nothing changed without --fix

    fixed = scene.verify_json("--digests", "--fix")

    assert [(p["path"], p["action"]) for p in fixed["problems"]] == [(str(entry), "deleted")]
    gone = {entry, cache.body_path(entry)}
    assert cache.snapshot(scene.cache_dir) == {p: b for p, b in before.items() if p not in gone}
    scene.index.reset_log()
    scene.download("again")
    wheel = scene.wheels["guardtest-alpha"]
    assert scene.index.count("/files/") == 1  # that file, fetched once more
    assert (scene.root / "again" / wheel.filename).read_bytes() == wheel.path.read_bytes()
    assert scene.verify_json("--digests")["digests"]["mismatched"] == 0


@pytest.mark.e2e
@pytest.mark.parametrize("pip", PIPS)
def test_bodies_stored_without_the_guard_and_without_a_server_digest_are_unverifiable(
    pip: str, scene_for: Callable[[str], Scene]
) -> None:
    """Nothing says what such a body should be: even rotted, it is never called damaged."""
    scene = scene_for(pip)
    scene.download("fill", guarded=False)
    cache.flip_body_byte(scene.entry("guardtest-alpha"), legacy=scene.legacy)
    before = cache.snapshot(scene.cache_dir)

    checked = scene.verify_json("--digests", "--fix")

    bodies = scene.bodies()
    assert checked["digests"] == {"verified": 0, "mismatched": 0, "unverifiable": bodies}
    assert checked["problems"] == []
    assert cache.snapshot(scene.cache_dir) == before
    text = scene.verify("--digests")
    assert text.returncode == 0, describe(text)
    assert f"{bodies} unverifiable (no digest: stored by a pip without the guard" in text.stderr


@pytest.mark.e2e
@pytest.mark.parametrize("pip", PIPS)
@pytest.mark.parametrize("header", ["X-Checksum-Sha256", "X-Checksum-Md5"])
def test_bodies_stored_without_the_guard_are_verified_by_the_servers_digest(
    pip: str, header: str, scene_for: Callable[[str], Scene]
) -> None:
    scene = scene_for(pip)
    scene.index.digest_header = header  # sent with files, not with pages
    scene.download("fill", guarded=False)
    pages = scene.bodies() - len(PROJECTS)

    clean = scene.verify_json("--digests")

    assert clean["digests"] == {"verified": len(PROJECTS), "mismatched": 0, "unverifiable": pages}
    entry = scene.entry("guardtest-bravo")
    cache.flip_body_byte(entry, legacy=scene.legacy)
    found = scene.verify_json("--digests", exit_code=1)
    (problem,) = found["problems"]
    assert problem["kind"] == "bad-body", problem
    assert f"the server's {header.lower()} header" in problem["reason"].lower(), problem
    fixed = scene.verify_json("--digests", "--fix")
    assert [(p["path"], p["action"]) for p in fixed["problems"]] == [(str(entry), "deleted")]
    assert not entry.exists()


# -- the second process ---------------------------------------------------------------------------


def _write_entry(http: Path, url: str, body: bytes) -> Path:
    """An http-v2 entry as a guarded pip stores it: the document, the guard's record, the body."""
    document = {
        "response": {
            "body": b"",
            "headers": {"Content-Length": str(len(body))},
            "status": 200,
            "version": 11,
            "reason": "OK",
            "decode_content": False,
        },
        "vary": {},
        digests.RECORD_KEY: digests.record_of(body),
    }
    path = Path(entries.entry_path(str(http), url))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"cc=4," + msgpack.dumps(document, use_bin_type=True))
    old = path.stat().st_mtime - 600  # written long ago, body after metadata
    os.utime(path, (old, old))
    Path(entries.body_path(str(path))).write_bytes(body)
    return path


class _NotingPid:
    """``verify.scan_subtrees`` that notes which process ran it (module level: picklable)."""

    def __init__(self, pids: str) -> None:
        self.pids = pids

    def __call__(self, *args: Any) -> Scan:
        with open(self.pids, "a") as note:
            note.write(f"{os.getpid()}\n")
        return _real_scan_subtrees(*args)


_real_scan_subtrees = verify.scan_subtrees


@pytest.mark.parametrize("fix", [False, True])
def test_a_second_process_hashes_and_counts_its_share(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fix: bool
) -> None:
    http = tmp_path / "pip" / "http-v2"
    paths = [_write_entry(http, f"https://x.example/{n}.whl", os.urandom(3000)) for n in range(80)]
    rotted = {str(path) for path in paths[::9]}
    for path in rotted:
        cache.flip_body_byte(Path(path))
    monkeypatch.setattr(verify, "PARALLEL_SAMPLE_THRESHOLD", 0)
    pids = tmp_path / "pids"
    monkeypatch.setattr(verify, "scan_subtrees", _NotingPid(str(pids)))

    scan = verify.verify(CacheLocation(str(tmp_path / "pip"), "test", False), fix, digests=True)

    assert pids.read_text().split() != [str(os.getpid())], "the share ran in another process"
    assert {finding.path for finding in scan.problems} == rotted
    assert {finding.kind for finding in scan.problems} == {"bad-body"}
    assert dict(scan.digests) == {"verified": 80 - len(rotted), "mismatched": len(rotted)}
    assert scan.ok_entries == 80 - len(rotted)
    left = {str(path) for path in paths if path.exists()}
    assert left == ({str(p) for p in paths} - rotted if fix else {str(p) for p in paths})


def test_a_body_whose_metadata_was_just_rewritten_is_left_for_the_next_scan(
    tmp_path: Path,
) -> None:
    """CacheControl writes the metadata first: metadata written moments ago, after its body, may
    belong to a body about to be put in place. Older, the same mismatch is damage."""
    root = tmp_path / "pip"
    path = _write_entry(root / "http-v2", "https://x.example/a.whl", os.urandom(3000))
    cache.flip_body_byte(path)
    location = CacheLocation(str(root), "test", False)
    body_written = time.time() - 60
    os.utime(cache.body_path(path), (body_written, body_written))
    os.utime(path)  # the metadata rewritten just now, after its body

    writing = verify.verify(location, fix=True, digests=True)

    assert (writing.problems, dict(writing.digests)) == ([], {})
    assert path.exists()
    old = time.time() - 600
    os.utime(path, (old, old))
    (finding,) = verify.verify(location, digests=True).problems
    assert (finding.path, finding.kind) == (str(path), "bad-body")
