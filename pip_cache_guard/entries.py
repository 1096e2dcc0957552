"""The on-disk side of a cache entry: where its files are, and deleting them without collateral.

An HTTP cache entry is a metadata file named ``sha224(url)`` five directory levels deep, plus (pip
23.3 and later) the same path with ``.body``. Other pips may share the directory, so deletion is
careful: only below the cache directory, never through a symbolic link, and only when the file still
holds the bytes that were diagnosed. The remaining window between that re-check and the unlink is
harmless: pip writes entries atomically, so the worst case is one re-download.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from typing import Literal

BODY_SUFFIX = ".body"

Action = Literal["deleted", "kept", "delete-failed"]


@dataclass(frozen=True)
class Deletion:
    """What happened to one entry's files, and why when nothing was deleted."""

    action: Action
    bytes_freed: int = 0
    reason: str = ""


def entry_path(http_dir: str, key: str) -> str:
    """The metadata file of ``key`` (a URL) in an HTTP cache directory, as CacheControl names it."""
    hashed = hashlib.sha224(key.encode()).hexdigest()
    return os.path.join(http_dir, *hashed[:5], hashed)


def body_path(metadata_path: str) -> str:
    return metadata_path + BODY_SUFFIX


def entry_size(metadata_path: str) -> int:
    """Bytes the entry occupies on disk now (metadata plus body); 0 for what is missing."""
    return sum(_size(path) or 0 for path in (metadata_path, body_path(metadata_path)))


def containment_problem(cache_dir: str, path: str) -> str | None:
    """Why ``path`` may not be deleted as part of ``cache_dir``, or None if it may.

    The cache directory itself may be a link (a cache moved to a bigger disk is common); below it,
    every directory must be real, and the file itself must be a regular file, not a link.
    """
    root = os.path.abspath(cache_dir)
    target = os.path.abspath(path)
    relative = os.path.relpath(target, root)
    if relative == os.curdir or relative.startswith(os.pardir) or os.path.isabs(relative):
        return "outside the cache directory"
    parent_expected = os.path.join(os.path.realpath(root), os.path.dirname(relative))
    if os.path.realpath(os.path.dirname(target)) != os.path.normpath(parent_expected):
        return "reached through a symbolic link"
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return "already gone"
    except OSError as exc:
        return f"cannot be examined ({exc.strerror or exc})"
    if stat.S_ISLNK(mode):
        return "is a symbolic link"
    if not stat.S_ISREG(mode):
        return "is not a regular file"
    return None


def _size(path: str) -> int | None:
    try:
        return os.lstat(path).st_size
    except OSError:
        return None


def _read_exact(path: str) -> bytes | None:
    """The file's bytes, never through a final link; None when it cannot be read."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def delete_entry(
    cache_dir: str,
    metadata_path: str,
    diagnosed: bytes,
    body_size: int | None = None,
) -> Deletion:
    """Delete an entry proven bad, if its metadata still holds the ``diagnosed`` bytes.

    ``body_size``, when given, is the body size that was diagnosed (a body mismatch): the body is
    then re-checked too, so that a body another pip has just rewritten is left alone.
    """
    problem = containment_problem(cache_dir, metadata_path)
    if problem is not None:
        return Deletion("kept", reason=f"metadata file {problem}")
    if _read_exact(metadata_path) != diagnosed:
        return Deletion("kept", reason="rewritten by another process since it was read")
    body = body_path(metadata_path)
    body_problem = containment_problem(cache_dir, body)
    if body_problem == "already gone":
        body = ""
    elif body_problem is not None:
        return Deletion("kept", reason=f"body file {body_problem}")
    elif body_size is not None and _size(body) != body_size:
        return Deletion("kept", reason="body rewritten by another process since it was read")
    freed = 0
    for path in (metadata_path, body):
        if path:
            outcome = _unlink(path)
            if outcome.action == "delete-failed":
                return Deletion("delete-failed", freed, outcome.reason)
            freed += outcome.bytes_freed
    return Deletion("deleted", freed)


def delete_file(cache_dir: str, path: str) -> Deletion:
    """Delete one file that is not a whole entry (an orphan, a leftover, a broken wheel)."""
    problem = containment_problem(cache_dir, path)
    if problem is not None:
        return Deletion("kept", reason=f"file {problem}")
    return _unlink(path)


def _unlink(path: str) -> Deletion:
    """Remove one file already checked by ``containment_problem``; count what it freed."""
    try:
        size = os.lstat(path).st_size
        os.unlink(path)
    except FileNotFoundError:
        return Deletion("kept", reason="already gone")
    except OSError as exc:
        return Deletion("delete-failed", reason=f"cannot delete: {exc.strerror or exc}")
    return Deletion("deleted", size)
