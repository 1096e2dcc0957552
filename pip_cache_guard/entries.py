"""The on-disk side of a cache entry: where its files are, and deleting them without collateral.

An HTTP cache entry is a metadata file named ``sha224(url)`` five directory levels deep, plus (pip
23.3 and later) the same path with ``.body``. Other pips may share the directory, so deletion is
careful: only below the cache directory, never through a symbolic link, and only when the file still
holds the bytes that were diagnosed. The remaining window between that re-check and the unlink is
harmless: pip writes entries atomically, so the worst case is one re-download.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import stat
from typing import BinaryIO, Callable, Literal, NamedTuple

BODY_SUFFIX = ".body"
# CacheControl writes an entry as two files, metadata first, then the body (from memory, right
# after). Metadata without its body that is younger than this may belong to a writer between its
# two writes right now; older, the second write is not coming (a crash, a killed process).
WRITE_GRACE_SECONDS = 120
# A file being deleted is first renamed to <name>.<pid>-<random hex><CLAIM_SUFFIX> beside itself;
# one whose bytes were proven bad in a way only reading them all shows (pip's hash check) carries
# the proof: <name>.<pid>-<random hex>.bad-sha256-<sha256 of those bytes><CLAIM_SUFFIX>.
CLAIM_SUFFIX = ".pcg-claim.tmp"
_PROOF_MARK = ".bad-sha256-"
_CLAIM_NAME = re.compile(
    r"(.+)\.([0-9]+)-[0-9a-f]+(?:"
    + re.escape(_PROOF_MARK)
    + r"([0-9a-f]{64}))?"
    + re.escape(CLAIM_SUFFIX)
    + r"\Z"
)

# ``already-deleted``: another process deleted the damaged file, or replaced it with a fresh one,
# before this one could; nothing damaged is left in place.
# ``restored``: ``verify --fix`` put back a good file a killed process had claimed.
Action = Literal["deleted", "kept", "delete-failed", "already-deleted", "restored"]
ALREADY_GONE = "already gone"


class Deletion(NamedTuple):
    """What happened to one entry's files, and why when nothing was deleted.

    NamedTuples, not dataclasses, here: this module is imported inside pip, where creating a
    dataclass costs ~0.3 ms at import."""

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


def damage_fingerprint(metadata_path: str, diagnosed: bytes, read: os.stat_result | None) -> str:
    """Names one damaged state of an entry: its file, the bytes judged (the metadata, or the
    digest of a body pip rejected), and the identity of the file read (the metadata file as pip
    was about to read it, or the body file pip opened). Met again (by pips running at the same
    moment, or by each run while the entry cannot be deleted) it is the same; an entry damaged
    anew differs, because pip stores a new entry by renaming new files into place (a new inode
    and mtime)."""
    digest = hashlib.sha256(os.fsencode(metadata_path) + b"\0" + diagnosed)
    if read is not None:
        digest.update("\0{}:{}:{}".format(*file_identity(read)).encode())
    return digest.hexdigest()[:32]


def written_recently(path: str, now: float) -> float | None:
    """Seconds since ``path`` was written, if it may still be part of a write in progress (or
    cannot be examined); None when it is older than ``WRITE_GRACE_SECONDS``."""
    try:
        age = now - os.lstat(path).st_mtime
    except OSError:
        return 0.0
    return age if age < WRITE_GRACE_SECONDS else None


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
        return ALREADY_GONE
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


def file_identity(status: os.stat_result) -> tuple[int, int, int]:
    """What tells one version of a file from the next: pip writes each by renaming a new file
    into place (inode, size and mtime)."""
    return status.st_ino, status.st_size, status.st_mtime_ns


def _same_identity(path: str, status: os.stat_result) -> bool:
    """Whether ``path`` still is the file ``status`` describes."""
    try:
        return file_identity(os.lstat(path)) == file_identity(status)
    except OSError:
        return False


def open_exact(path: str) -> BinaryIO | None:
    """The file opened for reading, never through a final link; None when it cannot be."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        return os.fdopen(os.open(path, flags), "rb")
    except OSError:
        return None


def read_exact(path: str) -> bytes | None:
    """The file's bytes, never through a final link; None when it cannot be read."""
    handle = open_exact(path)
    if handle is None:
        return None
    with handle:
        return handle.read()


def delete_entry(
    cache_dir: str,
    metadata_path: str,
    diagnosed: bytes,
    body: os.stat_result | None = None,
    read: os.stat_result | None = None,
    proven_bad: str | None = None,
) -> Deletion:
    """Delete an entry proven bad, if its files are still the ones that were judged.

    Each file is first renamed to a private name beside it: of several pips racing for the same
    entry exactly one wins the rename, and the winner checks what it took: the metadata must hold
    the ``diagnosed`` bytes, the body must be the file ``body`` describes (inode, size and mtime:
    a filesystem gives a deleted file's inode to the next file it creates, so the inode alone
    does not tell a fresh body from the judged one). Anything fresh is put back (a hard link,
    which never replaces anything newer). The metadata goes first: whoever wins it owns the
    entry, so a pip that met the entry while another was deleting it (and found no body) never
    takes half of it, and a pip reading the entry finds either all of it or no metadata. With no
    ``body`` (the entry had none) only the metadata is considered.

    ``read`` is the metadata file as it was just before it was read. A metadata file that is no
    longer that one (before the claim, or the one claimed) was rewritten meanwhile, perhaps with
    the same bytes, and with it (pip writes the metadata first) possibly the very body that was
    opened after it: then nothing is touched, lest a fresh entry go.

    ``proven_bad`` is the sha256 of bytes proven bad that no diagnosis of a file sees (a body pip's
    hash check rejected, size intact): the body's (with no ``body``, the metadata file's).
    Its claim carries it, so that a process killed while holding the claim leaves the proof
    behind and ``verify --fix`` deletes the file instead of putting it back; the metadata of such
    a body, claimed first, carries the sha256 of its own bytes, as it goes with the body.
    """
    problem = containment_problem(cache_dir, metadata_path)
    if problem == ALREADY_GONE:
        return Deletion("already-deleted", reason=f"metadata file {problem}")
    if problem is not None:
        return Deletion("kept", reason=f"metadata file {problem}")
    if read is not None and not _same_identity(metadata_path, read):
        return Deletion("already-deleted", reason="metadata file rewritten since it was read")
    body_file = body_path(metadata_path)
    if body is not None:
        body_problem = containment_problem(cache_dir, body_file)
        if body_problem is not None and body_problem != ALREADY_GONE:
            return Deletion("kept", reason=f"body file {body_problem}")

    def still_judged(claimed: str) -> bool:
        return (read is None or _same_identity(claimed, read)) and read_exact(claimed) == diagnosed

    metadata_proof = proven_bad
    if proven_bad is not None and body is not None:  # the metadata of a bad body goes with it
        metadata_proof = hashlib.sha256(diagnosed).hexdigest()
    taken = _take(metadata_path, still_judged, metadata_proof)
    if taken.action != "deleted" or body is None:
        # Rewritten, undeletable, or taken by another pip that is deleting this entry: either
        # way its body is not ours to touch (a fresh one belongs to the fresh metadata).
        return taken
    freed = _take(body_file, same_file(body), proven_bad).bytes_freed
    return Deletion("deleted", taken.bytes_freed + freed)


def _take(path: str, still_bad: Callable[[str], bool], proven_bad: str | None = None) -> Deletion:
    """Claim ``path`` (with the proof ``proven_bad``, if any); delete it if ``still_bad`` says it
    is what was judged, else put it back."""
    claimed = _claim(path, proven_bad)
    if isinstance(claimed, Deletion):
        return claimed
    if not still_bad(claimed):
        reason = "rewritten by another process since it was read"
        trouble = _give_back(claimed, path)
        return Deletion("already-deleted", reason=f"{reason}; {trouble}" if trouble else reason)
    return Deletion("deleted", _remove_claimed(claimed))


def delete_file(
    cache_dir: str, path: str, still_bad: Callable[[str], bool] | None = None
) -> Deletion:
    """Delete one file that is not a whole entry (an orphan, a leftover, a broken wheel).

    ``still_bad`` re-checks the claimed file (given its private name): False puts it back.
    """
    problem = containment_problem(cache_dir, path)
    if problem == ALREADY_GONE:
        return Deletion("already-deleted", reason=f"file {problem}")
    if problem is not None:
        return Deletion("kept", reason=f"file {problem}")
    return _take(path, still_bad or (lambda claimed: True))


def same_file(status: os.stat_result) -> Callable[[str], bool]:
    """A ``still_bad`` check: the claimed file is the one ``status`` describes (``file_identity``:
    pip replaces the files it rewrites by renaming a new one into place)."""
    return lambda claimed: _same_identity(claimed, status)


def _claim(path: str, proven_bad: str | None = None) -> str | Deletion:
    """Rename ``path`` to a private name beside it (``*.tmp``, so that a crash right after
    leaves a leftover ``verify`` recognises), which carries ``proven_bad`` (a sha256) if given;
    a Deletion says why it could not be taken."""
    proof = f"{_PROOF_MARK}{proven_bad}" if proven_bad else ""
    claimed = f"{path}.{os.getpid()}-{secrets.token_hex(4)}{proof}{CLAIM_SUFFIX}"
    try:
        os.rename(path, claimed)
    except FileNotFoundError:
        return Deletion("already-deleted", reason=f"{ALREADY_GONE} (another process deleted it)")
    except OSError as exc:
        return Deletion("delete-failed", reason=f"cannot delete: {exc.strerror or exc}")
    return claimed


def _give_back(claimed: str, path: str) -> str | None:
    """Return a fresh claimed file to ``path``; a newer file already there wins. Never loses the
    file: None when done, else why it stays under its claimed name.

    A hard link never replaces anything. Where links fail (FAT, exFAT, SMB; Linux's
    ``fs.protected_hardlinks`` when another user owns the file), the file is renamed back if the
    path is still free: a writer that slips in between is overwritten by an equally fresh copy.
    """
    try:
        os.link(claimed, path)
    except FileExistsError:
        pass  # something newer is there: it wins, our copy goes
    except OSError:
        if not os.path.lexists(path):
            try:
                os.rename(claimed, path)
            except OSError as exc:
                return f"could not be put back ({exc.strerror or exc}): it is {claimed}"
            return None
    with contextlib.suppress(OSError):  # at worst a second name of the same file stays behind
        os.unlink(claimed)
    return None


class Claim(NamedTuple):
    """A file some process renamed to delete it: where it came from, who took it, and the sha256
    of the bytes it had proven bad, if its name carries one (names without are older claims, or
    of files whose damage a diagnosis sees again)."""

    path: str
    original: str
    pid: int
    proven_bad: str | None = None


def parse_claim(path: str) -> Claim | None:
    """The claim ``path`` names, or None when it is not a claim's name."""
    match = _CLAIM_NAME.match(path)
    if match is None:
        return None
    return Claim(path, match.group(1), int(match.group(2)), match.group(3))


def holds_proven_bad(claim: Claim) -> bool:
    """Whether the claimed file holds exactly the bytes its claimant had proven bad (not a fresh
    file that took their place before the claim, which the claimant would have given back)."""
    if claim.proven_bad is None:
        return False
    handle = open_exact(claim.path)
    if handle is None:
        return False
    with handle:
        return sha256_hex(handle) == claim.proven_bad


def sha256_hex(handle: BinaryIO) -> str:
    """The sha256 of what is left to read of ``handle``, read in 1 MiB pieces (wheels are big)."""
    digest = hashlib.sha256()
    for chunk in iter(lambda: handle.read(1 << 20), b""):
        digest.update(chunk)
    return digest.hexdigest()


def claimant_alive(claim: Claim) -> bool:
    """Whether the process that took ``claim`` may still be at work on it.

    Only POSIX can ask (signal 0); elsewhere a claim is taken as abandoned: claims live for
    microseconds, and what ``verify`` then does with one is what its owner would have done.
    """
    # Windows: written to the documentation, run only in the forge's workflow
    if os.name != "posix":
        return False
    try:
        os.kill(claim.pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, another user's
        return True
    return True


def settle_claim(cache_dir: str, claim: Claim, still_good: bool) -> Deletion:
    """Finish what a process that died while deleting left behind: put a file that is
    ``still_good`` back where it was (unless something newer is there), delete anything else.
    A file its claimant had proven bad never goes back, whatever ``still_good`` says."""
    problem = containment_problem(cache_dir, claim.path)
    if problem is not None:
        return Deletion("kept", reason=f"file {problem}")
    if still_good and not holds_proven_bad(claim):
        size = _size(claim.path) or 0
        newer = os.path.lexists(claim.original)
        stays = _give_back(claim.path, claim.original)
        if stays is not None:
            return Deletion("kept", reason=stays)
        if newer:
            return Deletion("deleted", size, reason="a newer file is in its place")
        return Deletion("restored")
    return _take(claim.path, lambda claimed: True)


def _remove_claimed(claimed: str) -> int:
    """Delete a claimed file; the bytes it freed."""
    size = _size(claimed) or 0
    try:
        os.unlink(claimed)
    except OSError:
        return 0  # our own private name: nobody else touches it, so this is not expected
    return size
