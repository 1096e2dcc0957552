"""``verify``: check every file of a pip cache with the hook's own diagnosis, optionally fix.

The scan streams directory by directory (memory does not grow with the cache) and reads each
metadata file once. HTTP entries go through ``diagnose`` exactly as in the hook, without the
request-dependent Vary check: a Vary mismatch is a valid entry. On top of that, only a full scan can
see orphans (half an entry), leftover ``*.tmp`` files of interrupted writes, and cached wheels that
are not readable zip files. Files it does not recognise are reported, never deleted.
"""

from __future__ import annotations

import os
import re
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgpack

from pip_cache_guard import entries
from pip_cache_guard.diagnose import diagnose
from pip_cache_guard.locate import CacheLocation

# A temporary file younger than this may belong to a pip that is writing it right now.
TMP_GRACE_SECONDS = 3600
_ENTRY_NAME = re.compile(r"[0-9a-f]{56}\Z")
_HEX = re.compile(r"[0-9a-f]+\Z")
_LAYOUT_DEPTH = 5  # sha224 hex digest: <h0>/<h1>/<h2>/<h3>/<h4>/<digest>

# Kinds only a full scan sees (documented in README.md with the hook's kinds).
ORPHAN = "orphan"
LEFTOVER_TMP = "leftover-tmp"
BAD_WHEEL = "bad-wheel"

Progress = Callable[[int], None]


@dataclass
class Finding:
    """A damaged file (or entry) and what ``--fix`` did with it."""

    path: str
    kind: str
    reason: str
    bytes: int
    action: str = "found"  # found, deleted, kept, delete-failed


@dataclass
class LegacyDir:
    """The ``http/`` directory of pip up to 23.2; stale when the installed pip is newer."""

    path: str
    entries: int = 0
    bytes: int = 0
    stale: bool = False


@dataclass
class Scan:
    """Everything ``verify`` found; counts are totals, lists hold only what needs attention."""

    cache_dir: str
    entries: int = 0
    ok_entries: int = 0
    wheels: int = 0
    bytes_total: int = 0
    problems: list[Finding] = field(default_factory=list)
    unrecognised: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    legacy: LegacyDir | None = None
    fixed: bool = False
    seconds: float = 0.0

    @property
    def remaining(self) -> list[Finding]:
        return [finding for finding in self.problems if finding.action != "deleted"]

    @property
    def bytes_freed(self) -> int:
        return sum(finding.bytes for finding in self.problems if finding.action == "deleted")


class CacheMissing(Exception):
    """The cache directory does not exist or is not a directory."""


def _unpack(payload: bytes) -> Any:
    return msgpack.loads(payload, raw=False)


def verify(
    location: CacheLocation,
    fix: bool = False,
    progress: Progress | None = None,
    legacy_is_stale: bool = True,
    now: float | None = None,
) -> Scan:
    """Scan the cache at ``location``; with ``fix``, delete exactly the damaged files."""
    if not os.path.isdir(location.root):
        raise CacheMissing(f"no cache directory at {location.root}")
    started = time.perf_counter()
    scan = Scan(location.root)
    now = time.time() if now is None else now
    if os.path.isdir(location.http_dir):
        _scan_http_dir(scan, location.http_dir, True, now, fix, progress)
    if os.path.isdir(location.legacy_http_dir):
        entries_before, bytes_before = scan.entries, scan.bytes_total
        _scan_http_dir(scan, location.legacy_http_dir, False, now, fix, progress)
        scan.legacy = LegacyDir(
            location.legacy_http_dir,
            scan.entries - entries_before,
            scan.bytes_total - bytes_before,
            legacy_is_stale,
        )
    if os.path.isdir(location.wheels_dir):
        _scan_wheels(scan, location.wheels_dir, fix, progress)
    scan.fixed = fix
    scan.seconds = time.perf_counter() - started
    return scan


def _walk(top: str, scan: Scan) -> Iterator[tuple[str, int, list[os.DirEntry[str]]]]:
    """(directory, depth below ``top``, its files), one directory at a time, never via links."""
    pending = [(top, 0)]
    while pending:
        directory, depth = pending.pop()
        try:
            with os.scandir(directory) as listing:
                children = list(listing)
        except OSError as exc:
            scan.errors.append(f"cannot list {directory}: {exc.strerror or exc}")
            continue
        files = []
        for child in children:
            if child.is_dir(follow_symlinks=False):
                pending.append((child.path, depth + 1))
            else:
                files.append(child)
        yield directory, depth, files


def _scan_http_dir(
    scan: Scan,
    http_dir: str,
    separate_bodies: bool,
    now: float,
    fix: bool,
    progress: Progress | None,
) -> None:
    for directory, depth, files in _walk(http_dir, scan):
        # Entries of this directory must be named <h0><h1><h2><h3><h4>...: one check per directory.
        prefix = _layout_prefix(directory, depth)
        regular = {child.name: child for child in files if child.is_file(follow_symlinks=False)}
        names = {child.name for child in files}
        for child in files:
            if child.name not in regular:  # links, FIFOs, sockets: never opened, never followed
                _unrecognised(scan, child, "not a regular file")
        for name, child in regular.items():
            if name.endswith(".tmp"):
                _check_tmp(scan, http_dir, child, now, fix)
            elif prefix is None or not _is_entry_name(name, prefix):
                _unrecognised(scan, child, "not part of pip's cache layout")
            elif name.endswith(entries.BODY_SUFFIX):
                size = _size(child)  # DirEntry caches it: the entry's own check reuses it
                scan.bytes_total += size
                if separate_bodies and name[: -len(entries.BODY_SUFFIX)] not in regular:
                    _problem(scan, http_dir, child.path, ORPHAN, "body without metadata", size, fix)
            else:
                body_name = name + entries.BODY_SUFFIX
                body = regular.get(body_name) if separate_bodies else None
                body_size = _size(body) if body is not None else None
                # A body that is a link (reported above) is not judged through, nor missing.
                needs_body = separate_bodies and body_name not in names
                _check_entry(scan, http_dir, child.path, body_size, needs_body, fix)
                if progress is not None:
                    progress(1)


def _layout_prefix(directory: str, depth: int) -> str | None:
    """The five hex digits that entry names in ``directory`` must start with, if it is a leaf."""
    if depth != _LAYOUT_DEPTH:
        return None
    parts = directory.rsplit(os.sep, _LAYOUT_DEPTH)[1:]
    prefix = "".join(parts)
    return prefix if len(prefix) == _LAYOUT_DEPTH and _HEX.match(prefix) else None


def _is_entry_name(name: str, prefix: str) -> bool:
    digest = name[: -len(entries.BODY_SUFFIX)] if name.endswith(entries.BODY_SUFFIX) else name
    return digest.startswith(prefix) and _ENTRY_NAME.match(digest) is not None


def _check_entry(
    scan: Scan,
    http_dir: str,
    path: str,
    body_size: int | None,
    needs_body: bool,
    fix: bool,
) -> None:
    scan.entries += 1
    try:
        with open(path, "rb") as stream:
            data = stream.read()
    except OSError as exc:
        scan.errors.append(f"cannot read {path}: {exc.strerror or exc}")
        return
    scan.bytes_total += len(data)
    verdict = diagnose(data, _unpack, body_size=body_size)
    if verdict.is_damage:
        size = len(data) + (body_size or 0)
        finding = Finding(path, verdict.kind, verdict.reason, size)
        if fix:
            outcome = entries.delete_entry(http_dir, path, data, body_size)
            finding.action = outcome.action
            if outcome.reason:
                finding.reason = f"{finding.reason}; {outcome.reason}"
        scan.problems.append(finding)
    elif needs_body:
        _problem(scan, http_dir, path, ORPHAN, "metadata without body", len(data), fix)
    else:
        scan.ok_entries += 1


def _check_tmp(scan: Scan, http_dir: str, child: os.DirEntry[str], now: float, fix: bool) -> None:
    try:
        status = child.stat(follow_symlinks=False)
    except OSError:
        return  # gone already: its writer finished
    size, age = status.st_size, now - status.st_mtime
    scan.bytes_total += size
    if age < TMP_GRACE_SECONDS:
        return  # possibly being written by a running pip
    hours = age / 3600
    reason = f"left by an interrupted write {hours:.0f} h ago"
    _problem(scan, http_dir, child.path, LEFTOVER_TMP, reason, size, fix)


def _scan_wheels(scan: Scan, wheels_dir: str, fix: bool, progress: Progress | None) -> None:
    for _directory, _depth, files in _walk(wheels_dir, scan):
        for child in files:
            if not child.name.endswith(".whl"):
                scan.bytes_total += _size(child)  # origin.json and the like: pip's, not ours
                continue
            if not child.is_file(follow_symlinks=False):
                _unrecognised(scan, child, "not a regular file")
                continue
            size = _size(child)
            scan.bytes_total += size
            scan.wheels += 1
            problem = _zip_problem(child.path)
            if problem is not None:
                _problem(scan, wheels_dir, child.path, BAD_WHEEL, problem, size, fix)
            if progress is not None:
                progress(1)


def _zip_problem(path: str) -> str | None:
    """Why a cached wheel cannot be opened as a zip archive (its central directory is read)."""
    try:
        with zipfile.ZipFile(path) as archive:
            archive.infolist()
    except zipfile.BadZipFile as exc:
        return f"not a readable zip file ({exc})"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    return None


def _problem(
    scan: Scan, root: str, path: str, kind: str, reason: str, size: int, fix: bool
) -> None:
    """A damaged file that is not a whole entry: delete it alone, safely, when fixing."""
    finding = Finding(path, kind, reason, size)
    if fix:
        still_bad = kind != ORPHAN or not _has_partner(path)
        outcome = (
            entries.delete_file(root, path)
            if still_bad
            else entries.Deletion("kept", reason="its other half has appeared since")
        )
        finding.action = outcome.action
        if outcome.reason:
            finding.reason = f"{reason}; {outcome.reason}"
    scan.problems.append(finding)


def _has_partner(path: str) -> bool:
    if path.endswith(entries.BODY_SUFFIX):
        return os.path.exists(path[: -len(entries.BODY_SUFFIX)])
    return os.path.exists(entries.body_path(path))


def _unrecognised(scan: Scan, child: os.DirEntry[str], reason: str) -> None:
    """Report a file we do not know; it is never opened, followed or deleted."""
    size = _size(child)
    scan.bytes_total += size
    scan.unrecognised.append(Finding(child.path, "unrecognised", reason, size, "kept"))


def _size(child: os.DirEntry[str]) -> int:
    try:
        return child.stat(follow_symlinks=False).st_size
    except OSError:
        return 0
