"""Deleting an entry: only what was diagnosed, only inside the cache, never through a link."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pip_cache_guard import entries
from pip_cache_guard.entries import (
    Deletion,
    body_path,
    containment_problem,
    delete_entry,
    entry_path,
)

from support.users import run_unprivileged, world_readable_tmp

URL = "https://files.example/demo-1.0-py3-none-any.whl"
DAMAGED = b"\x00garbage"


def _make_entry(http_dir: Path, metadata: bytes = DAMAGED, body: bytes | None = b"B" * 50) -> Path:
    path = Path(entry_path(str(http_dir), URL))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(metadata)
    if body is not None:
        Path(body_path(str(path))).write_bytes(body)
    return path


def test_entry_path_matches_pips_layout(tmp_path: Path) -> None:
    from pip._internal.network.cache import SafeFileCache

    cache = SafeFileCache(str(tmp_path))
    assert entry_path(str(tmp_path), URL) == cache._get_cache_path(URL)


def _body_status(path: Path) -> os.stat_result:
    """The body file as a pip that judged the entry saw it."""
    return os.lstat(body_path(str(path)))


def _store_like_pip(path: Path, data: bytes) -> None:
    """pip writes a cache file to a temporary name and renames it into place."""
    temporary = path.with_name(path.name + ".writing.tmp")
    temporary.write_bytes(data)
    temporary.replace(path)


def test_deletes_metadata_and_body_and_counts_bytes(tmp_path: Path) -> None:
    path = _make_entry(tmp_path)

    outcome = delete_entry(str(tmp_path), str(path), DAMAGED, _body_status(path))

    assert outcome.action == "deleted"
    assert outcome.bytes_freed == len(DAMAGED) + 50
    assert sorted(tmp_path.rglob("*")) == sorted(p for p in tmp_path.rglob("*") if p.is_dir())


def test_a_body_that_was_not_judged_is_not_touched(tmp_path: Path) -> None:
    """No body at judgment time: one that appears later belongs to a fresh write."""
    path = _make_entry(tmp_path)

    outcome = delete_entry(str(tmp_path), str(path), DAMAGED, body=None)

    assert outcome.action == "deleted"
    assert not path.exists()
    assert Path(body_path(str(path))).read_bytes() == b"B" * 50


def test_entry_without_body_is_deleted(tmp_path: Path) -> None:
    path = _make_entry(tmp_path, body=None)

    assert delete_entry(str(tmp_path), str(path), DAMAGED).action == "deleted"
    assert not path.exists()


def test_rewritten_entry_is_kept(tmp_path: Path) -> None:
    path = _make_entry(tmp_path, metadata=b"cc=4,fresh and valid")

    outcome = delete_entry(str(tmp_path), str(path), DAMAGED)

    assert outcome.action == "already-deleted"  # the damaged file was replaced: nothing is left
    assert "rewritten" in outcome.reason
    assert path.read_bytes() == b"cc=4,fresh and valid"
    assert Path(body_path(str(path))).exists()


def test_rewritten_body_is_kept_for_a_body_mismatch(tmp_path: Path) -> None:
    path = _make_entry(tmp_path, body=b"B" * 50)
    body = Path(body_path(str(path)))
    judged = _body_status(path)
    _store_like_pip(body, b"F" * 80)  # a new body, the judged metadata still there

    outcome = delete_entry(str(tmp_path), str(path), DAMAGED, body=judged)

    assert (outcome.action, outcome.bytes_freed) == ("deleted", len(DAMAGED))
    assert not path.exists()
    assert body.read_bytes() == b"F" * 80


@pytest.mark.parametrize("moment", ["before the deletion", "right before the claim"])
def test_metadata_rewritten_with_the_same_bytes_is_kept_with_its_body(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moment: str
) -> None:
    """pip stored a fresh pair whose metadata has the very bytes judged (the same headers within
    the same second): it is another file than the one read, so nothing of the pair goes."""
    path = _make_entry(tmp_path, metadata=b"cc=4,valid headers", body=b"B" * 50)
    read, judged = os.lstat(path), _body_status(path)
    real_claim = entries._claim

    def another_pip_stores() -> None:
        _store_like_pip(path, b"cc=4,valid headers")
        _store_like_pip(Path(body_path(str(path))), b"F" * 80)

    def claim(claimed: str, proven_bad: str | None = None) -> str | Deletion:
        if claimed == str(path):
            another_pip_stores()
        return real_claim(claimed, proven_bad)

    if moment == "before the deletion":
        another_pip_stores()
    else:
        monkeypatch.setattr(entries, "_claim", claim)

    outcome = delete_entry(str(tmp_path), str(path), b"cc=4,valid headers", judged, read)

    assert outcome.action == "already-deleted"
    assert path.read_bytes() == b"cc=4,valid headers"
    assert Path(body_path(str(path))).read_bytes() == b"F" * 80


@pytest.mark.parametrize("moment", ["claiming the body", "checking the metadata"])
def test_of_two_racing_deleters_one_deletes_and_the_fresh_entry_survives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moment: str
) -> None:
    """Two pips judged the same damaged entry; the second acts while the first is deleting,
    then stores its fresh download. Only one may claim the deletion, and nothing fresh is lost."""
    path = _make_entry(tmp_path)
    body = Path(body_path(str(path)))
    judged = _body_status(path)
    competitor: list[Deletion] = []

    def another_pip_acts() -> None:
        if not competitor:
            competitor.append(delete_entry(str(tmp_path), str(path), DAMAGED, judged))
            _store_like_pip(path, b"cc=4,fresh")
            _store_like_pip(body, b"W" * 500)

    real_read, real_identity = entries.read_exact, entries._same_identity

    def read(claimed: str) -> bytes | None:
        data = real_read(claimed)
        if moment == "checking the metadata":
            another_pip_acts()
        return data

    def identity(claimed: str, status: os.stat_result) -> bool:
        same = real_identity(claimed, status)
        if moment == "claiming the body":
            another_pip_acts()
        return same

    monkeypatch.setattr(entries, "read_exact", read)
    monkeypatch.setattr(entries, "_same_identity", identity)

    ours = delete_entry(str(tmp_path), str(path), DAMAGED, judged)

    assert ours.action == "deleted"
    assert competitor[0].action == "already-deleted" and "already gone" in competitor[0].reason
    assert path.read_bytes() == b"cc=4,fresh"
    assert body.read_bytes() == b"W" * 500
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, body.name])


def test_a_fresh_body_with_the_inode_of_the_judged_one_is_kept(tmp_path: Path) -> None:
    """A filesystem gives a deleted file's inode to the next file it creates (ext4 does, at
    once): another pip deleted the damaged pair and stored a fresh one whose body got the judged
    body's inode. Only the inode matches: size and mtime say it is another file."""
    path = _make_entry(tmp_path, metadata=DAMAGED, body=b"W" * 500)
    fresh = _body_status(path)
    judged = os.stat_result(
        (*fresh[:6], 50, fresh.st_atime, fresh.st_mtime - 2, fresh.st_ctime),
        {"st_mtime_ns": fresh.st_mtime_ns - 2_000_000_000},
    )
    assert judged.st_ino == fresh.st_ino

    outcome = delete_entry(str(tmp_path), str(path), DAMAGED, judged)

    assert Path(body_path(str(path))).read_bytes() == b"W" * 500
    assert outcome.bytes_freed == len(DAMAGED)  # the metadata only


def test_a_pip_that_found_no_body_takes_nothing_of_an_entry_another_is_deleting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second pip read the metadata just before the first took the entry, and opened the body
    just after: it judges the metadata alone. It must not take the half the first has not
    deleted yet: one pip deletes the entry, the other finds it gone."""
    path = _make_entry(tmp_path)
    judged = _body_status(path)
    competitor: list[Deletion] = []
    real_remove = entries._remove_claimed

    def remove_then_another_pip_acts(claimed: str) -> int:
        freed = real_remove(claimed)
        if not competitor:  # between our first file and our second
            competitor.append(delete_entry(str(tmp_path), str(path), DAMAGED, body=None))
        return freed

    monkeypatch.setattr(entries, "_remove_claimed", remove_then_another_pip_acts)

    ours = delete_entry(str(tmp_path), str(path), DAMAGED, judged)

    assert (ours.action, ours.bytes_freed) == ("deleted", len(DAMAGED) + 50)
    assert competitor[0].action == "already-deleted", competitor
    assert list(path.parent.iterdir()) == []


@pytest.mark.parametrize("with_body", [False, True])
def test_an_entry_another_process_deleted_is_reported_as_already_deleted(
    tmp_path: Path, with_body: bool
) -> None:
    path = Path(entry_path(str(tmp_path), URL))

    judged = os.lstat(tmp_path) if with_body else None  # any status: there is nothing to match
    outcome = delete_entry(str(tmp_path), str(path), DAMAGED, judged)

    assert outcome.action == "already-deleted"
    assert "already gone" in outcome.reason
    assert entries.delete_file(str(tmp_path), str(path)).action == "already-deleted"


def _fresh_entry_and_a_failing_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: OSError
) -> Path:
    """A damaged entry that another pip rewrote before we claimed it, on a filesystem where
    ``os.link`` fails with ``error``."""
    path = _make_entry(tmp_path, metadata=b"cc=4,fresh and valid")

    def no_links(source: str, target: str) -> None:
        raise error

    monkeypatch.setattr(os, "link", no_links)
    return path


@pytest.mark.parametrize(
    "error",
    [PermissionError(errno.EPERM, "Operation not permitted"), OSError(errno.EXDEV, "x-device")],
)
def test_a_fresh_file_is_given_back_where_hard_links_fail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: OSError
) -> None:
    path = _fresh_entry_and_a_failing_link(tmp_path, monkeypatch, error)

    outcome = delete_entry(str(tmp_path), str(path), DAMAGED)

    assert path.read_bytes() == b"cc=4,fresh and valid"
    assert (outcome.action, outcome.reason) == (
        "already-deleted",
        "rewritten by another process since it was read",
    )
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name, path.name + ".body"]


def test_a_newer_file_at_the_path_wins_over_the_one_given_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _fresh_entry_and_a_failing_link(tmp_path, monkeypatch, PermissionError(errno.EPERM, ""))
    real_read = entries.read_exact

    def read_then_another_pip_writes(claimed: str) -> bytes | None:
        data = real_read(claimed)
        _store_like_pip(path, b"cc=4,newer still")
        return data

    monkeypatch.setattr(entries, "read_exact", read_then_another_pip_writes)

    assert delete_entry(str(tmp_path), str(path), DAMAGED).action == "already-deleted"
    assert path.read_bytes() == b"cc=4,newer still"
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name, path.name + ".body"]


def test_a_file_that_cannot_be_given_back_is_kept_and_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _fresh_entry_and_a_failing_link(tmp_path, monkeypatch, PermissionError(errno.EPERM, ""))
    real_rename = os.rename
    renames: list[str] = []

    def rename_once(source: str, target: str) -> None:  # the claim works, the way back fails
        renames.append(target)
        if len(renames) > 1:
            raise PermissionError(errno.EACCES, "Permission denied")
        real_rename(source, target)

    monkeypatch.setattr(os, "rename", rename_once)

    outcome = delete_entry(str(tmp_path), str(path), DAMAGED)

    assert Path(renames[0]).read_bytes() == b"cc=4,fresh and valid"
    assert outcome.action == "already-deleted"
    assert f"could not be put back (Permission denied): it is {renames[0]}" in outcome.reason


def test_symlinked_metadata_and_its_target_outside_are_untouched(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    outside = tmp_path / "precious.txt"
    outside.write_bytes(DAMAGED)
    path = Path(entry_path(str(cache), URL))
    path.parent.mkdir(parents=True)
    path.symlink_to(outside)

    outcome = delete_entry(str(cache), str(path), DAMAGED)

    assert outcome.action == "kept"
    assert "symbolic link" in outcome.reason
    assert path.is_symlink()
    assert outside.read_bytes() == DAMAGED


def test_symlinked_body_pointing_outside_is_untouched(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    outside = tmp_path / "precious.bin"
    outside.write_bytes(b"keep me")
    path = _make_entry(cache, body=None)
    Path(body_path(str(path))).symlink_to(outside)

    # pip opened the body through the link: the inode it saw is the outside file's.
    outcome = delete_entry(str(cache), str(path), DAMAGED, os.lstat(outside))

    assert outcome.action == "kept"
    assert path.exists()
    assert outside.read_bytes() == b"keep me"


def test_directory_link_below_the_cache_is_not_followed(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    elsewhere = tmp_path / "elsewhere"
    real = _make_entry(elsewhere)
    first_level = real.relative_to(elsewhere).parts[0]
    cache.mkdir()
    (cache / first_level).symlink_to(elsewhere / first_level, target_is_directory=True)
    through_link = cache / real.relative_to(elsewhere)

    outcome = delete_entry(str(cache), str(through_link), DAMAGED)

    assert outcome.action == "kept"
    assert "symbolic link" in outcome.reason
    assert real.read_bytes() == DAMAGED


def test_cache_directory_that_is_itself_a_link_is_fine(tmp_path: Path) -> None:
    real_cache = tmp_path / "big-disk" / "pip"
    path = _make_entry(real_cache)
    link = tmp_path / "cache-link"
    link.symlink_to(real_cache, target_is_directory=True)

    outcome = delete_entry(str(link), str(link / path.relative_to(real_cache)), DAMAGED)

    assert outcome.action == "deleted"
    assert not path.exists()


@pytest.mark.parametrize("where", ["../outside", "/etc/passwd", "."])
def test_paths_outside_the_cache_are_refused(tmp_path: Path, where: str) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    assert containment_problem(str(cache), os.path.join(str(cache), where)) is not None


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    yield from world_readable_tmp()


def test_read_only_cache_reports_delete_failed(shared_tmp: Path) -> None:
    cache = shared_tmp / "cache"
    path = _make_entry(cache)
    path.parent.chmod(0o555)
    # The unprivileged user may not be able to reach this checkout: give it its own copy.
    package = Path(entries.__file__).parent
    shutil.copytree(package, shared_tmp / "lib" / package.name)
    code = (
        "import sys; from pip_cache_guard.entries import delete_entry; "
        "print(delete_entry(sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3])).action)"
    )
    environ = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(shared_tmp / "lib")}
    try:
        result = run_unprivileged(
            [sys.executable, "-c", code, str(cache), str(path), DAMAGED.hex()], env=environ
        )
    finally:
        path.parent.chmod(0o755)

    assert result.stdout.strip() == "delete-failed", result.stderr
    assert path.exists()


def test_a_fresh_file_another_user_owns_survives_protected_hardlinks(shared_tmp: Path) -> None:
    """A shared cache: root's pip rewrote the entry, ``nobody``'s guard claimed it and must give
    it back, but Linux's ``fs.protected_hardlinks`` forbids linking another user's file."""
    if Path("/proc/sys/fs/protected_hardlinks").read_text().strip() != "1" or os.geteuid() != 0:
        pytest.skip("needs root and fs.protected_hardlinks=1")
    cache = shared_tmp / "cache"
    path = _make_entry(cache, metadata=b"cc=4,fresh and valid")  # owned by root, mode 0644
    for directory in [cache, *path.relative_to(cache).parents]:
        (cache / directory).chmod(0o777)  # a shared cache every user may write
    package = Path(entries.__file__).parent
    shutil.copytree(package, shared_tmp / "lib" / package.name)
    code = (
        "import sys; from pip_cache_guard.entries import delete_entry; "
        "print(delete_entry(sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3])).action)"
    )
    environ = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(shared_tmp / "lib")}

    result = run_unprivileged(
        [sys.executable, "-c", code, str(cache), str(path), DAMAGED.hex()], env=environ
    )

    assert path.read_bytes() == b"cc=4,fresh and valid", result.stderr
    assert result.stdout.strip() == "already-deleted"
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name, path.name + ".body"]


# -- claims and the proof they carry -------------------------------------------------------------


class _Killed(BaseException):
    """What stops a deletion here, as SIGKILL would (nothing of it runs on)."""


def _killed_right_after_the_claim(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Stop a deletion right after its first claim; the claimed names."""
    claimed: list[str] = []
    real_rename = os.rename

    def rename(source: str, target: str) -> None:
        real_rename(source, target)
        if target.endswith(entries.CLAIM_SUFFIX):
            claimed.append(target)
            raise _Killed

    monkeypatch.setattr(os, "rename", rename)
    return claimed


@pytest.mark.parametrize("body", [True, False], ids=["body", "inline"])
def test_a_claim_carries_the_proof_it_was_given_and_settling_never_puts_it_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: bool
) -> None:
    """The file holding bytes proven bad (the body; without one, the metadata) is claimed under
    a name that carries their sha256: a process killed right then leaves the proof behind. The
    metadata goes first; that of a bad body carries the sha256 of its own bytes."""

    metadata = b"cc=4,valid-looking metadata"
    path = _make_entry(tmp_path, metadata=metadata, body=b"rotted body" if body else None)
    held = Path(body_path(str(path))) if body else path
    proof = hashlib.sha256(held.read_bytes()).hexdigest()
    claimed = _killed_right_after_the_claim(monkeypatch)

    with pytest.raises(_Killed):
        delete_entry(
            str(tmp_path), str(path), metadata, _body_status(path) if body else None,
            proven_bad=proof,
        )  # fmt: skip
    monkeypatch.undo()

    (name,) = claimed
    assert len(os.path.basename(name)) < 255
    claim = entries.parse_claim(name)
    first = hashlib.sha256(metadata).hexdigest()  # the proof itself, without a body
    assert claim == entries.Claim(name, str(path), os.getpid(), first)
    assert entries.holds_proven_bad(claim)
    outcome = entries.settle_claim(str(tmp_path), claim, still_good=True)
    assert outcome.action == "deleted" and not path.exists() and not Path(name).exists()
    assert held.exists() == body  # a bad body left alone is an orphan, which verify deletes


def test_claims_without_proof_still_parse_and_a_proof_of_other_bytes_proves_nothing(
    tmp_path: Path,
) -> None:
    path = _make_entry(tmp_path, metadata=b"cc=4,good")
    old_name = f"{path}.4242-0badc0de{entries.CLAIM_SUFFIX}"
    assert entries.parse_claim(old_name) == entries.Claim(old_name, str(path), 4242, None)
    os.rename(path, old_name)
    assert not entries.holds_proven_bad(entries.Claim(old_name, str(path), 4242, None))
    other = "ab" * 32  # the sha256 of some other bytes: a fresh file was claimed in their place
    claim = entries.Claim(old_name, str(path), 4242, other)
    assert not entries.holds_proven_bad(claim)
    assert entries.settle_claim(str(tmp_path), claim, still_good=True).action == "restored"
    assert path.read_bytes() == b"cc=4,good"
