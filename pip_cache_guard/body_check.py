"""``verify --digests``: each cached body hashed against the digest its entry names.

The hook hashes a body only when pip reads it; a body nobody reads again can rot unseen. This
reads every body of the cache once and compares it with ``digests.expected_digest``: the guard's
own record, else a digest the server sent. An entry that has neither (stored by a pip without the
guard, from a server that sends none) is unverifiable: nothing says what its body should be, so it
is never called damaged. A permanent redirect's entry (no record, not a 200) holds no body.

A mismatch is proven twice before it is reported: the body is hashed again, from a fresh open of
the same file, and the metadata file must still hold the bytes read. An entry whose metadata was
written moments ago and after its body may be half-way through a rewrite (CacheControl writes the
metadata first): it is left for the next scan.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, Literal, NamedTuple

from pip_cache_guard import digests, entries

Outcome = Literal["verified", "mismatched", "unverifiable", "no-body"]
OUTCOMES: tuple[Outcome, ...] = ("verified", "mismatched", "unverifiable")  # counted by verify
_CHUNK = 1 << 20


class BodyCheck(NamedTuple):
    """What hashing one entry's body showed, and for a mismatch what ``--fix`` needs."""

    outcome: Outcome
    reason: str = ""
    body: os.stat_result | None = None  # the body file hashed (None: the body is in the metadata)
    proof: str | None = None  # sha256 of the file holding the bad bytes, for the deletion's claim


NO_BODY = BodyCheck("no-body")


def check_body(
    metadata_path: str, data: bytes, document: Any, body_path: str | None, now: float
) -> BodyCheck:
    """Hash the body of the valid entry whose metadata file ``metadata_path`` held ``data``
    (decoded: ``document``); the body is the file ``body_path``, or (None) inside the document.
    An ``OSError`` reading the body file (but its absence: deleted since) is the caller's to
    report."""
    expected = digests.expected_digest(document)
    if expected is None:
        status = document["response"]["status"]
        return BodyCheck("unverifiable") if status == 200 else NO_BODY
    if body_path is None:
        body: bytes = document["response"]["body"]
        if expected.matches(digests.hasher(expected.algorithm, body).hexdigest()):
            return BodyCheck("verified")
        # The bad bytes are in the metadata file, which delete_entry re-reads before deleting.
        return _mismatch(expected, None, hashlib.sha256(data).hexdigest())
    try:
        digest, status, _ = _digests_of(body_path, expected.algorithm, with_sha256=False)
        if expected.matches(digest):
            return BodyCheck("verified")
        # Proven again before it is called damaged: the same file, hashed anew (with the sha256
        # its claim carries), under the metadata read.
        again, status_again, sha256 = _digests_of(body_path, expected.algorithm, with_sha256=True)
    except FileNotFoundError:
        return NO_BODY  # deleted since it was listed: by a pip that found it damaged, or rewrote it
    if (
        expected.matches(again)
        or entries.file_identity(status) != entries.file_identity(status_again)
        or entries.read_exact(metadata_path) != data
        or _maybe_being_written(metadata_path, status, now)
    ):
        return NO_BODY
    return _mismatch(expected, status, sha256)


def _mismatch(expected: digests.Expected, body: os.stat_result | None, proof: str) -> BodyCheck:
    reason = f"the cached body does not match {expected.source} ({expected.algorithm})"
    return BodyCheck("mismatched", reason, body, proof)


def _maybe_being_written(metadata_path: str, body: os.stat_result, now: float) -> bool:
    """Metadata younger than ``entries.WRITE_GRACE_SECONDS`` and not older than its body (file
    times are coarse: both may have the same): its writer may be about to put the body that goes
    with it in place."""
    try:
        metadata = os.lstat(metadata_path)
    except OSError:
        return True
    recent = entries.written_recently(metadata_path, now) is not None
    return recent and metadata.st_mtime_ns >= body.st_mtime_ns


def _digests_of(path: str, algorithm: str, with_sha256: bool) -> tuple[str, os.stat_result, str]:
    """The file's digest by ``algorithm``, its status as opened, and (``with_sha256``: else the
    same digest again) its sha256, in one read; never through a final link."""
    wanted = digests.hasher(algorithm)
    proof = hashlib.sha256() if with_sha256 and algorithm != "sha256" else None
    descriptor = os.open(
        path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    )
    with os.fdopen(descriptor, "rb", buffering=0) as handle:
        status = os.fstat(handle.fileno())
        buffer = bytearray(_CHUNK)
        view = memoryview(buffer)
        while size := handle.readinto(buffer):
            wanted.update(view[:size])
            if proof is not None:
                proof.update(view[:size])
    hexdigest = wanted.hexdigest()
    return hexdigest, status, proof.hexdigest() if proof is not None else hexdigest
