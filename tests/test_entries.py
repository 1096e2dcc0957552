"""Deleting an entry: only what was diagnosed, only inside the cache, never through a link."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pip_cache_guard.entries import body_path, containment_problem, delete_entry, entry_path

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


def test_deletes_metadata_and_body_and_counts_bytes(tmp_path: Path) -> None:
    path = _make_entry(tmp_path)

    outcome = delete_entry(str(tmp_path), str(path), DAMAGED)

    assert outcome.action == "deleted"
    assert outcome.bytes_freed == len(DAMAGED) + 50
    assert not path.exists()
    assert not Path(body_path(str(path))).exists()


def test_entry_without_body_is_deleted(tmp_path: Path) -> None:
    path = _make_entry(tmp_path, body=None)

    assert delete_entry(str(tmp_path), str(path), DAMAGED).action == "deleted"
    assert not path.exists()


def test_rewritten_entry_is_kept(tmp_path: Path) -> None:
    path = _make_entry(tmp_path, metadata=b"cc=4,fresh and valid")

    outcome = delete_entry(str(tmp_path), str(path), DAMAGED)

    assert outcome.action == "kept"
    assert "rewritten" in outcome.reason
    assert path.read_bytes() == b"cc=4,fresh and valid"
    assert Path(body_path(str(path))).exists()


def test_rewritten_body_is_kept_for_a_body_mismatch(tmp_path: Path) -> None:
    path = _make_entry(tmp_path, body=b"B" * 80)

    outcome = delete_entry(str(tmp_path), str(path), DAMAGED, body_size=50)

    assert outcome.action == "kept"
    assert path.exists()


def test_already_deleted_entry_is_reported_as_kept(tmp_path: Path) -> None:
    path = Path(entry_path(str(tmp_path), URL))

    outcome = delete_entry(str(tmp_path), str(path), DAMAGED)

    assert outcome.action == "kept"
    assert "already gone" in outcome.reason


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

    outcome = delete_entry(str(cache), str(path), DAMAGED)

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
    path = _make_entry(shared_tmp)
    path.parent.chmod(0o555)
    code = (
        "import sys; from pip_cache_guard.entries import delete_entry; "
        "print(delete_entry(sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3])).action)"
    )
    try:
        result = run_unprivileged(
            [sys.executable, "-c", code, str(shared_tmp), str(path), DAMAGED.hex()]
        )
    finally:
        path.parent.chmod(0o755)

    assert result.stdout.strip() == "delete-failed", result.stderr
    assert path.exists()
