"""``verify``: check every file of a pip cache with the hook's own diagnosis, optionally fix.

The directory given may be a pip cache root (``http-v2/``, ``http/``, ``wheels/`` below it) or
itself a CacheControl directory (pip's ``http-v2`` or ``http``, Poetry's ``_http_`` or ``_http``,
pip-audit's cache): five levels of one-hex-digit directories. Its layout (bodies apart or inside)
is known by name, else found by looking for a ``.body`` file. Standalone CacheControl leaves
filelock's ``<entry>.lock`` and ``<entry>.body.lock`` files beside the entries, and ``tmpXXXXXXXX``
files when a write is interrupted: the first are part of the layout, the second leftovers.

The scan streams directory by directory (memory does not grow with the cache) and reads each
metadata file once. HTTP entries go through ``diagnose`` exactly as in the hook, without the
request-dependent Vary check: a Vary mismatch is a valid entry. On top of that, only a full scan can
see orphans (half an entry), leftover ``*.tmp`` files of interrupted writes, and cached wheels that
are not readable zip files. Files it does not recognise are reported, never deleted.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib.metadata
import multiprocessing
import multiprocessing.context
import os
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgpack

from pip_cache_guard import body_check, entries
from pip_cache_guard.diagnose import (
    PIP_VENDORED,
    Reader,
    diagnose,
    standalone_reader,
    wheel_problem,
)
from pip_cache_guard.locate import HTTP_DIR, LEGACY_HTTP_DIR, WHEELS_DIR, CacheLocation

# Third-level directories below one first-level one from which a second process pays off (about
# 500 entries in the whole cache; forking one costs ~10 ms).
PARALLEL_SAMPLE_THRESHOLD = 32
# Starting one as a fresh interpreter (spawn: macOS, Windows; forkserver: Python 3.14 on Linux
# once a thread runs) costs 20 to 50 times as much (180 - 560 ms measured on a loaded Linux
# machine, fork 6 - 22 ms): from about 4,000 entries (160 third-level directories) it pays off.
SPAWNED_SAMPLE_FACTOR = 5
# With --digests every body is read and hashed too (0.1 - 3 ms a body, against ~20 µs for a
# metadata file alone): a second process pays off from this many times fewer entries.
DIGESTS_SAMPLE_DIVISOR = 16
# A temporary file younger than this may belong to a pip that is writing it right now.
TMP_GRACE_SECONDS = 3600
_ENTRY_NAME = re.compile(r"[0-9a-f]{56}\Z")
_HEX = re.compile(r"[0-9a-f]+\Z")
_LOCK_SUFFIX = ".lock"  # filelock's, beside each file standalone CacheControl writes
_MKSTEMP_NAME = re.compile(r"tmp[a-z0-9_]{8}\Z")  # tempfile.mkstemp: CacheControl 0.14.2+ writes
# CacheControl directories whose layout their name tells: pip's and Poetry's.
_SEPARATE_BODY_DIRS = {"http-v2": True, "_http_": True, "http": False, "_http": False}
_LAYOUT_DEPTH = 5  # sha224 hex digest: <h0>/<h1>/<h2>/<h3>/<h4>/<digest>
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
_READ_CHUNK = 64 * 1024  # metadata is ~1 kB (pip <= 23.2: the body too); below malloc's mmap size

# Kinds only a full scan sees (documented in docs/damage.md with the hook's kinds).
ORPHAN = "orphan"
LEFTOVER_TMP = "leftover-tmp"
BAD_WHEEL = "bad-wheel"
BAD_BODY = "bad-body"  # the hook's kind too: a body that fails its digest (``--digests``)

Progress = Callable[[int], None]


@dataclass
class Finding:
    """A damaged file (or entry) and what ``--fix`` did with it."""

    path: str
    kind: str
    reason: str
    bytes: int
    action: str = "found"  # found, or what --fix did: an entries.Action


@dataclass
class LegacyDir:
    """The ``http/`` directory of pip up to 23.2; stale when the installed pip is newer."""

    path: str
    entries: int = 0
    bytes: int = 0
    stale: bool = False


@dataclass(frozen=True)
class _Rules:
    """How one directory of the cache is judged; picklable, so a second process gets a copy."""

    root: str  # the directory being scanned; every deletion stays inside it
    separate_bodies: bool  # http-v2 (pip 23.3+): an entry is metadata plus a .body file
    now: float  # the moment that leftover temporary files are aged against
    fix: bool
    reader: Reader = PIP_VENDORED  # the CacheControl whose reading the verdicts follow
    digests: bool = False  # hash every body that has a digest (``body_check``)


# Findings (and errors) listed in detail per list; beyond, they are only counted: a cache of a
# million damaged entries would otherwise hold a million of them. The counts cover them all.
FINDINGS_LISTED = 10_000
_DONE = ("deleted", "already-deleted", "restored")  # by us, or by another process meanwhile
_Item = TypeVar("_Item")


@dataclass
class Scan:
    """Everything ``verify`` found; counts are totals, lists hold only what needs attention (the
    first ``FINDINGS_LISTED`` of each)."""

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
    # What the lists would hold without their limit.
    problems_found: int = 0
    unrecognised_found: int = 0
    errors_found: int = 0
    kinds: Counter[str] = field(default_factory=Counter)  # problems by kind
    actions: Counter[str] = field(default_factory=Counter)  # problems by what --fix did
    bytes_freed: int = 0
    # A CacheControl directory: whose reading judged its entries ("cachecontrol 0.15.0"); None for
    # a pip cache, judged as pip's vendored CacheControl reads it.
    judged_as: str | None = None
    # With --digests: bodies by what hashing them showed (``body_check.OUTCOMES``).
    checked_digests: bool = False
    digests: Counter[str] = field(default_factory=Counter)

    def add_problem(self, finding: Finding) -> None:
        """Count a problem (its action final) and list it while the list has room."""
        self.problems_found += 1
        self.kinds[finding.kind] += 1
        self.actions[finding.action] += 1
        if finding.action == "deleted":
            self.bytes_freed += finding.bytes
        _list(self.problems, finding)

    def add_unrecognised(self, finding: Finding) -> None:
        self.unrecognised_found += 1
        _list(self.unrecognised, finding)

    def add_error(self, error: str) -> None:
        self.errors_found += 1
        _list(self.errors, error)

    def absorb(self, part: Scan) -> None:
        """Add what a scan of another part of the same cache found."""
        self.entries += part.entries
        self.ok_entries += part.ok_entries
        self.wheels += part.wheels
        self.bytes_total += part.bytes_total
        self.problems_found += part.problems_found
        self.unrecognised_found += part.unrecognised_found
        self.errors_found += part.errors_found
        self.kinds.update(part.kinds)
        self.actions.update(part.actions)
        self.digests.update(part.digests)
        self.bytes_freed += part.bytes_freed
        _list_all(self.problems, part.problems)
        _list_all(self.unrecognised, part.unrecognised)
        _list_all(self.errors, part.errors)

    @property
    def remaining(self) -> list[Finding]:
        """The listed problems still in the cache."""
        return [finding for finding in self.problems if finding.action not in _DONE]

    @property
    def remaining_found(self) -> int:
        """All problems still in the cache, listed or not."""
        return self.problems_found - sum(self.actions[action] for action in _DONE)


def _list(listed: list[_Item], item: _Item) -> None:
    if len(listed) < FINDINGS_LISTED:
        listed.append(item)


def _list_all(listed: list[_Item], items: list[_Item]) -> None:
    listed.extend(items[: max(0, FINDINGS_LISTED - len(listed))])


# What ``cache_kind`` says a directory is.
PIP_CACHE = "pip"
CACHECONTROL_DIR = "cachecontrol"  # a CacheControl directory itself: http-v2, Poetry's _http_...
# pip's own subdirectories of its cache root, which pip creates as it first needs each: any one of
# them makes a directory a pip cache (``selfcheck/`` alone: a pip cache with nothing cached yet).
_PIP_CACHE_PARTS = (HTTP_DIR, LEGACY_HTTP_DIR, WHEELS_DIR, "selfcheck")


class CacheMissing(Exception):
    """The cache directory does not exist, is not a directory, or holds no cache."""


def cache_kind(directory: str) -> str | None:
    """What kind of cache ``directory`` is (``PIP_CACHE``, ``CACHECONTROL_DIR``), or None when it
    holds none that ``verify`` knows: a scan of it would check nothing and wrongly call it clean.
    An empty directory is a pip cache nobody has written to yet (a new ``--cache-dir``): clean,
    truly. A CacheControl directory holds only the first level of its hashed layout."""
    try:
        with os.scandir(directory) as listing:
            children = list(listing)
    except OSError:
        return PIP_CACHE  # cannot tell: the scan will report why it cannot read it
    names = {child.name for child in children}
    parts = [os.path.join(directory, part) for part in _PIP_CACHE_PARTS if part in names]
    if not names or any(os.path.isdir(part) for part in parts):
        return PIP_CACHE
    if all(
        child.is_dir(follow_symlinks=False) and len(child.name) == 1 and _HEX.match(child.name)
        for child in children
    ):
        return CACHECONTROL_DIR
    return None


def _no_cache_message(directory: str) -> str:
    """Why ``directory`` cannot be verified, pointing at the pip cache next to it if there is one
    (``…/pip/http-v2`` is where the guard's summary says the damage was)."""
    message = (
        f"{directory} holds no pip cache (pip's cache directory holds http-v2/, http/ or wheels/) "
        "and is no CacheControl cache (one-hex-digit directories only)"
    )
    for candidate in (os.path.dirname(directory), os.path.join(directory, "pip")):
        if candidate != directory and os.path.isdir(candidate) and cache_kind(candidate):
            return f"{message}; {candidate} is one"
    return message


def _unpack(payload: bytes) -> Any:
    return msgpack.loads(payload, raw=False)


def verify(
    location: CacheLocation,
    fix: bool = False,
    progress: Progress | None = None,
    legacy_is_stale: bool = True,
    now: float | None = None,
    digests: bool = False,
) -> Scan:
    """Scan the cache at ``location``; with ``fix``, delete exactly the damaged files; with
    ``digests``, hash every body against its digest too."""
    if not os.path.isdir(location.root):
        raise CacheMissing(f"no cache directory at {location.root}")
    kind = cache_kind(location.root)
    if kind is None:
        raise CacheMissing(_no_cache_message(location.root))
    started = time.perf_counter()
    scan = Scan(location.root)
    now = time.time() if now is None else now
    if kind == CACHECONTROL_DIR:
        reader = installed_reader()
        rules = _Rules(location.root, _bodies_apart(location.root), now, fix, reader, digests)
        scan.judged_as = reader.name
        _scan_http_dir(scan, rules, progress)
    else:
        _scan_pip_cache(scan, location, fix, progress, legacy_is_stale, now, digests)
    scan.fixed = fix
    scan.checked_digests = digests
    scan.seconds = time.perf_counter() - started
    return scan


def _scan_pip_cache(
    scan: Scan,
    location: CacheLocation,
    fix: bool,
    progress: Progress | None,
    legacy_is_stale: bool,
    now: float,
    digests: bool,
) -> None:
    """A pip cache root: ``http-v2/``, the legacy ``http/`` and ``wheels/``."""
    if os.path.isdir(location.http_dir):
        rules = _Rules(location.http_dir, True, now, fix, digests=digests)
        _scan_http_dir(scan, rules, progress)
    if os.path.isdir(location.legacy_http_dir):
        entries_before, bytes_before = scan.entries, scan.bytes_total
        rules = _Rules(location.legacy_http_dir, False, now, fix, digests=digests)
        _scan_http_dir(scan, rules, progress)
        scan.legacy = LegacyDir(
            location.legacy_http_dir,
            scan.entries - entries_before,
            scan.bytes_total - bytes_before,
            legacy_is_stale,
        )
    if os.path.isdir(location.wheels_dir):
        _scan_wheels(scan, _Rules(location.wheels_dir, False, now, fix), progress)


def installed_reader() -> Reader:
    """Whose reading judges a CacheControl directory: the program that reads it (Poetry,
    pip-audit...) is unknown, so the standalone cachecontrol installed beside the guard; pip's
    vendored copy's rule if there is none."""
    try:
        return standalone_reader(importlib.metadata.version("cachecontrol"))
    except importlib.metadata.PackageNotFoundError:
        return PIP_VENDORED


def _bodies_apart(directory: str) -> bool:
    """Whether a CacheControl directory keeps bodies in ``.body`` files: known by its name for
    pip's and Poetry's, else by whether it holds any."""
    known = _SEPARATE_BODY_DIRS.get(os.path.basename(os.path.normpath(directory)))
    return known if known is not None else _holds_a_body(directory)


def _holds_a_body(directory: str) -> bool:
    """Whether any ``.body`` file lies below ``directory`` (stops at the first)."""
    for _directory, _subdirectories, files in os.walk(directory):
        if any(name.endswith(entries.BODY_SUFFIX) for name in files):
            return True
    return False


def _walk(
    starts: list[str], scan: Scan, depth: int = 1
) -> Iterator[tuple[str, str | None, list[os.DirEntry[str]]]]:
    """(directory, prefix, its files) for the trees below ``starts`` (directories ``depth`` levels
    below the one scanned): one directory at a time, never through a link. ``prefix`` is the five
    hex digits that entry names must start with in a leaf directory of the layout, else None."""
    first_digits = (os.path.basename(start) if depth == 1 else "" for start in starts)
    pending = [(start, depth, digits) for start, digits in zip(starts, first_digits)]
    while pending:
        directory, level, digits = pending.pop()
        files, subdirectories = _listing(directory, scan)
        for child in subdirectories:
            pending.append((child.path, level + 1, digits + child.name))
        leaf = level == _LAYOUT_DEPTH and len(digits) == _LAYOUT_DEPTH and _HEX.match(digits)
        yield directory, digits if leaf else None, files


def _scan_http_dir(scan: Scan, rules: _Rules, progress: Progress | None) -> None:
    """Scan one HTTP cache directory; a large one in two processes, one per half of its tree."""
    top_files, subdirectories = _listing(rules.root, scan)
    subtrees = sorted(child.path for child in subdirectories)  # the same split every time
    _scan_files(scan, rules, rules.root, None, top_files, progress)
    context = _process_context()
    worth_it = _worth_a_second_process(subtrees, context, rules.digests)
    helper_part = subtrees[1::2] if worth_it else []
    own_part = [tree for tree in subtrees if tree not in helper_part]
    with _second_process(scan.cache_dir, rules, helper_part, context) as part:
        _scan_trees(scan, rules, own_part, progress)
    scan.absorb(part.result)
    if progress is not None and part.result.entries:
        progress(part.result.entries)


def scan_subtrees(cache_dir: str, rules: _Rules, subtrees: list[str]) -> Scan:
    """Scan some first-level subtrees of an HTTP cache directory (the second process's share)."""
    scan = Scan(cache_dir)
    _scan_trees(scan, rules, subtrees, None)
    return scan


def _scan_trees(scan: Scan, rules: _Rules, subtrees: list[str], progress: Progress | None) -> None:
    for directory, prefix, files in _walk(subtrees, scan):
        if files:  # most directories above the leaves hold none
            _scan_files(scan, rules, directory, prefix, files, progress)


def _scan_files(
    scan: Scan,
    rules: _Rules,
    directory: str,
    prefix: str | None,
    files: list[os.DirEntry[str]],
    progress: Progress | None,
) -> None:
    """Judge the files of one directory of an HTTP cache; entries there are named ``prefix``...
    (None: no entry belongs there)."""
    regular = {child.name: child for child in files if child.is_file(follow_symlinks=False)}
    held: set[str] = set()  # names whose file a claim still holds: their other half is no orphan
    claims = [
        (child, claim)
        for name, child in regular.items()
        if name.endswith(entries.CLAIM_SUFFIX)
        and (claim := entries.parse_claim(child.path)) is not None
    ]
    if claims:
        restored, held = _settle_claims(scan, rules, claims, regular)
        if restored:  # files came back: judge them with their entries
            files = _listing(directory, scan)[0]
            regular = {child.name: child for child in files if child.is_file(follow_symlinks=False)}
    names: Container[str] = regular  # every name there, and those claims hold
    if len(regular) < len(files) or held:
        names = {child.name for child in files} | held
        for child in files:
            if child.name not in regular:  # links, FIFOs, sockets: never opened, never followed
                _unrecognised(scan, child, "not a regular file")
    for name, child in regular.items():
        if prefix is not None and name.startswith(prefix) and _ENTRY_NAME.match(name):
            _check_entry(scan, rules, child, regular, names)  # the common case, tried first
            if progress is not None:
                progress(1)
        elif (
            prefix is not None
            and name.endswith(entries.BODY_SUFFIX)
            and _is_entry_name(name, prefix)
        ):
            size = _size(child)  # DirEntry caches it: the entry's own check has asked already
            scan.bytes_total += size
            metadata_name = name[: -len(entries.BODY_SUFFIX)]
            if rules.separate_bodies and metadata_name not in regular and metadata_name not in held:
                _problem(scan, rules, child.path, ORPHAN, "body without metadata", size)
        elif name.endswith(entries.CLAIM_SUFFIX) and entries.parse_claim(name) is not None:
            continue  # settled above
        elif name.endswith(".tmp") or (prefix is not None and _MKSTEMP_NAME.match(name)):
            _check_tmp(scan, rules, child)
        elif (
            prefix is not None
            and name.endswith(_LOCK_SUFFIX)
            and _is_entry_name(name[: -len(_LOCK_SUFFIX)], prefix)
        ):
            scan.bytes_total += _size(child)  # filelock's: part of the layout, held or not
        else:
            _unrecognised(scan, child, "not part of CacheControl's cache layout")


def _listing(directory: str, scan: Scan) -> tuple[list[os.DirEntry[str]], list[os.DirEntry[str]]]:
    """The files of ``directory`` and its subdirectories (not entered)."""
    files: list[os.DirEntry[str]] = []
    subdirectories: list[os.DirEntry[str]] = []
    try:
        with os.scandir(directory) as listing:
            for child in listing:
                if child.is_dir(follow_symlinks=False):
                    subdirectories.append(child)
                else:
                    files.append(child)
    except OSError as exc:
        scan.add_error(f"cannot list {directory}: {exc.strerror or exc}")
    return files, subdirectories


def _worth_a_second_process(
    subtrees: list[str], context: multiprocessing.context.BaseContext, digests: bool = False
) -> bool:
    """Two cores and a cache of more than a few hundred entries (a few thousand where ``context``
    starts a fresh interpreter), judged by one sample: pip spreads entries evenly, so the
    third-level directories below one first-level directory (at most 256) grow with the cache
    until about 20,000 entries. ``digests``: every body is hashed as well."""
    if (os.cpu_count() or 1) < 2 or len(subtrees) < 2:
        return False
    sample = 0
    try:
        with os.scandir(subtrees[0]) as second_level:
            for child in second_level:
                if child.is_dir(follow_symlinks=False):
                    with os.scandir(child.path) as third_level:
                        sample += sum(1 for _ in third_level)
    except OSError:
        return False
    forked = context.get_start_method() == "fork"
    threshold = PARALLEL_SAMPLE_THRESHOLD * (1 if forked else SPAWNED_SAMPLE_FACTOR)
    return sample >= threshold // (DIGESTS_SAMPLE_DIVISOR if digests else 1)


class _PartResult:
    """The second process's share of a scan, or an empty one."""

    def __init__(self, cache_dir: str) -> None:
        self.result = Scan(cache_dir)


@contextlib.contextmanager
def _second_process(
    cache_dir: str,
    rules: _Rules,
    subtrees: list[str],
    context: multiprocessing.context.BaseContext,
) -> Iterator[_PartResult]:
    """Scan ``subtrees`` in another process, started by ``context``, while the caller scans the
    rest. Whatever the start method, the process gets all it needs as arguments (a fresh
    interpreter sees nothing of this one's state, a forkserver's child only its server's).

    If no process can be started (a sandbox, no semaphores), the share is scanned here after
    the caller's, so a scan never fails for want of parallelism.
    """
    part = _PartResult(cache_dir)
    if not subtrees:
        yield part
        return
    try:
        pool = concurrent.futures.ProcessPoolExecutor(1, mp_context=context)
        future = pool.submit(scan_subtrees, cache_dir, rules, subtrees)
    except (OSError, ImportError, NotImplementedError):
        yield part
        part.result = scan_subtrees(cache_dir, rules, subtrees)
        return
    try:
        yield part
    except BaseException:
        pool.shutdown(cancel_futures=True)
        raise
    try:
        part.result = future.result()
    except Exception:  # the process died or could not be fed: scan its share here instead
        part.result = scan_subtrees(cache_dir, rules, subtrees)
    finally:
        pool.shutdown()


def _process_context() -> multiprocessing.context.BaseContext:
    """fork where it is safe and cheap (Linux, no other thread yet), else the platform default."""
    if sys.platform.startswith("linux") and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def _is_entry_name(name: str, prefix: str) -> bool:
    digest = name[: -len(entries.BODY_SUFFIX)] if name.endswith(entries.BODY_SUFFIX) else name
    return digest.startswith(prefix) and _ENTRY_NAME.match(digest) is not None


def _check_entry(
    scan: Scan,
    rules: _Rules,
    child: os.DirEntry[str],
    regular: dict[str, os.DirEntry[str]],
    names: Container[str],
) -> None:
    """Judge one entry by its metadata file ``child``, the regular files beside it and the names
    of all the files there."""
    scan.entries += 1
    path = child.path
    body_name = child.name + entries.BODY_SUFFIX
    body = regular.get(body_name) if rules.separate_bodies else None
    # A body that is a link (reported as unrecognised) is not judged through, nor missing.
    needs_body = rules.separate_bodies and body_name not in names
    try:
        data = _read(path)
    except OSError as exc:
        scan.add_error(f"cannot read {path}: {exc.strerror or exc}")
        return
    scan.bytes_total += len(data)
    body_size = _size(body) if body is not None else None
    verdict = diagnose(data, _unpack, body_size=body_size, reader=rules.reader)
    if verdict.is_damage:
        size = len(data) + (body_size or 0)
        finding = Finding(path, verdict.kind, verdict.reason, size)
        _entry_problem(scan, rules, finding, data, _status(body))
    elif needs_body and entries.written_recently(path, rules.now) is None:
        _problem(scan, rules, path, ORPHAN, "metadata without body", len(data))
    elif not (rules.digests and _bad_body(scan, rules, path, data, body, body_size)):
        scan.ok_entries += 1  # (metadata written moments ago may be waiting for its body)


def _bad_body(
    scan: Scan,
    rules: _Rules,
    path: str,
    data: bytes,
    body: os.DirEntry[str] | None,
    body_size: int | None,
) -> bool:
    """``--digests``: hash the body of a valid entry (its ``.body`` file ``body``, else inside the
    metadata ``data``); count what that showed, and report a mismatch as ``bad-body``, deleted
    with ``fix`` if the entry still holds exactly what was judged. True for a mismatch."""
    if rules.separate_bodies and body is None:
        return False  # no body file yet (a writer at work), or a link: never read through
    try:
        document = _unpack(data.partition(b",")[2])  # a valid entry: ``cc=4,`` and its document
        check = body_check.check_body(
            path, data, document, body.path if body is not None else None, rules.now
        )
    except OSError as exc:
        scan.add_error(f"cannot read {body.path if body else path}: {exc.strerror or exc}")
        return False
    if check.outcome in body_check.OUTCOMES:
        scan.digests[check.outcome] += 1
    if check.outcome != "mismatched":
        return False
    finding = Finding(path, BAD_BODY, check.reason, len(data) + (body_size or 0))
    _entry_problem(scan, rules, finding, data, check.body, check.proof)
    return True


def _entry_problem(
    scan: Scan,
    rules: _Rules,
    finding: Finding,
    data: bytes,
    body: os.stat_result | None,
    proven_bad: str | None = None,
) -> None:
    """A damaged entry (metadata ``data``, body file ``body`` as judged): with ``fix``, deleted
    if its files are still the ones judged (``proven_bad``: the claim's proof, see
    ``entries.delete_entry``)."""
    if rules.fix:
        outcome = entries.delete_entry(rules.root, finding.path, data, body, proven_bad=proven_bad)
        finding.action = outcome.action
        if outcome.reason:
            finding.reason = f"{finding.reason}; {outcome.reason}"
    scan.add_problem(finding)


def _read(path: str) -> bytes:
    """The whole file, never through a final link, in half the system calls of
    ``open(path, "rb").read()`` (a few microseconds an entry, a million times)."""
    descriptor = os.open(path, _READ_FLAGS)
    try:
        chunks = []
        while chunk := os.read(descriptor, _READ_CHUNK):
            chunks.append(chunk)
    finally:
        os.close(descriptor)
    return b"".join(chunks)  # one chunk: that very object, no copy


def _settle_claims(
    scan: Scan,
    rules: _Rules,
    claims: list[tuple[os.DirEntry[str], entries.Claim]],
    regular: dict[str, os.DirEntry[str]],
) -> tuple[bool, set[str]]:
    """Files a deleting process took and then died holding (SIGKILL between rename and unlink).

    One whose owner may still be at work is left alone. A file that is still part of a valid
    entry goes back where it was (a deleting pip also takes good files, to re-check them, and
    gives them back); anything else is deleted. Returns whether a file went back, and the
    original names of the files claims still hold.
    """
    restored = False
    held: set[str] = set()

    def is_good(claim: entries.Claim, size: int) -> bool:
        return _claimed_file_is_good(rules, claim, size, regular)

    for child, claim in claims:
        size = _size(child)
        if entries.claimant_alive(claim):
            scan.bytes_total += size
            held.add(os.path.basename(claim.original))
            continue
        finding = _settle_claim(rules, child, claim, size, is_good)
        restored = restored or finding.action == "restored"
        if finding.action != "restored":  # else counted again where it now is
            scan.bytes_total += size
        if finding.action not in ("restored", "deleted"):
            held.add(os.path.basename(claim.original))
        scan.add_problem(finding)
    return restored, held


def _settle_claim(
    rules: _Rules,
    child: os.DirEntry[str],
    claim: entries.Claim,
    size: int,
    is_good: Callable[[entries.Claim, int], bool],
) -> Finding:
    """A claim whose process is dead: what it holds, and with ``fix`` the file put back if
    ``is_good`` (it would make a usable entry or wheel again), else deleted. A file its claimant
    had proven bad (its sha256 is the one the claim's name carries) is never put back."""
    proven = entries.holds_proven_bad(claim)
    good = not proven and is_good(claim, size)
    if proven:
        what = f"a file it had proven damaged (sha256 {claim.proven_bad})"
    else:
        what = "a file of a valid entry" if good else "a damaged or replaced file"
    reason = f"left by a process (pid {claim.pid}) that died while deleting; holds {what}"
    finding = Finding(child.path, LEFTOVER_TMP, reason, size)
    if rules.fix:
        finding.action = entries.settle_claim(rules.root, claim, good).action
    return finding


def _claimed_file_is_good(
    rules: _Rules, claim: entries.Claim, size: int, regular: dict[str, os.DirEntry[str]]
) -> bool:
    """Whether a claimed file, put back, makes (with what is beside it) an entry pip can use."""
    name = os.path.basename(claim.original)
    if name in regular:
        return False  # a newer file took its place
    if name.endswith(entries.BODY_SUFFIX):
        metadata = regular.get(name[: -len(entries.BODY_SUFFIX)])
        return metadata is not None and _is_valid(rules, metadata.path, size)
    body = regular.get(name + entries.BODY_SUFFIX) if rules.separate_bodies else None
    if rules.separate_bodies and body is None:
        return False
    return _is_valid(rules, claim.path, _size(body) if body is not None else None)


def _is_valid(rules: _Rules, metadata_path: str, body_size: int | None) -> bool:
    try:
        with open(metadata_path, "rb") as stream:
            data = stream.read()
    except OSError:
        return False
    return not diagnose(data, _unpack, body_size=body_size, reader=rules.reader).is_damage


def _check_tmp(scan: Scan, rules: _Rules, child: os.DirEntry[str]) -> None:
    try:
        status = child.stat(follow_symlinks=False)
    except OSError:
        return  # gone already: its writer finished
    size, age = status.st_size, rules.now - status.st_mtime
    scan.bytes_total += size
    if age < TMP_GRACE_SECONDS:
        return  # possibly being written by a running pip
    hours = age / 3600
    reason = f"left by an interrupted write {hours:.0f} h ago"
    _problem(scan, rules, child.path, LEFTOVER_TMP, reason, size)


def _scan_wheels(scan: Scan, rules: _Rules, progress: Progress | None) -> None:
    """Cached wheels (``wheels/``, built by pip): each must be a readable wheel, judged exactly as
    the hook judges one before pip uses it (``diagnose.wheel_problem``). A guarded pip killed
    while deleting a bad wheel (or its ``origin.json``) leaves a claim here too."""
    for _directory, _prefix, files in _walk([rules.root], scan, depth=0):
        for child in files:
            if child.name.endswith(entries.CLAIM_SUFFIX) and child.is_file(follow_symlinks=False):
                claim = entries.parse_claim(child.path)
                if claim is not None:
                    _settle_wheel_claim(scan, rules, child, claim)
                    continue
            if not child.name.endswith(".whl"):
                scan.bytes_total += _size(child)  # origin.json and the like: pip's, not ours
                continue
            if not child.is_file(follow_symlinks=False):
                _unrecognised(scan, child, "not a regular file")
                continue
            size = _size(child)
            scan.bytes_total += size
            scan.wheels += 1
            problem = wheel_problem(child.path)
            if problem is not None:
                _problem(scan, rules, child.path, BAD_WHEEL, problem, size)
            if progress is not None:
                progress(1)


def _settle_wheel_claim(
    scan: Scan, rules: _Rules, child: os.DirEntry[str], claim: entries.Claim
) -> None:
    """A claim in ``wheels/``: a wheel that passes the hook's own check goes back (unless pip
    built a new one meanwhile); anything else (an ``origin.json``, which the hook deletes only
    after its wheel) is deleted."""
    size = _size(child)
    scan.bytes_total += size
    if entries.claimant_alive(claim):
        return
    finding = _settle_claim(rules, child, claim, size, _is_good_wheel)
    if finding.action == "restored":
        scan.wheels += 1
    scan.add_problem(finding)


def _is_good_wheel(claim: entries.Claim, _size: int) -> bool:
    return claim.original.endswith(".whl") and wheel_problem(claim.path) is None


def _problem(scan: Scan, rules: _Rules, path: str, kind: str, reason: str, size: int) -> None:
    """A damaged file that is not a whole entry: delete it alone, safely, when fixing."""
    finding = Finding(path, kind, reason, size)
    if rules.fix:
        still_bad = kind != ORPHAN or not _has_partner(path)
        outcome = (
            entries.delete_file(rules.root, path)
            if still_bad
            else entries.Deletion("kept", reason="its other half has appeared since")
        )
        finding.action = outcome.action
        if outcome.reason:
            finding.reason = f"{reason}; {outcome.reason}"
    scan.add_problem(finding)


def _has_partner(path: str) -> bool:
    if path.endswith(entries.BODY_SUFFIX):
        return os.path.exists(path[: -len(entries.BODY_SUFFIX)])
    return os.path.exists(entries.body_path(path))


def _unrecognised(scan: Scan, child: os.DirEntry[str], reason: str) -> None:
    """Report a file we do not know; it is never opened, followed or deleted."""
    size = _size(child)
    scan.bytes_total += size
    scan.add_unrecognised(Finding(child.path, "unrecognised", reason, size, "kept"))


def _size(child: os.DirEntry[str]) -> int:
    try:
        return child.stat(follow_symlinks=False).st_size
    except OSError:
        return 0


def _status(child: os.DirEntry[str] | None) -> os.stat_result | None:
    """The file as it was judged (``DirEntry`` keeps the status ``_size`` asked for), for a safe
    deletion; on Windows that status has no inode, which ``DirEntry.inode`` gives."""
    if child is None:
        return None
    try:
        status = child.stat(follow_symlinks=False)
        if status.st_ino:
            return status
        fields = (status.st_mode, child.inode(), *tuple(status)[2:])
    except OSError:
        return None
    return os.stat_result(fields, {"st_mtime_ns": status.st_mtime_ns})
