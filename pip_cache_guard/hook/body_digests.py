"""Cached bodies checked against their digest while pip reads them; the guard's own digest
recorded when pip stores one.

- Reading: when an entry says what its body must hash to (``digests.expected_digest``: the
  guard's record, else a digest the server sent), the body pip is served is wrapped
  (``DigestingBody``) and hashed as pip reads it, never read a second time. A body read to its
  end that does not match is damage; what pip wrote from it is then evicted and fetched once more
  (``rejected_files.evict_mismatched``, ``pages``). A file whose link carries a hash pip checks
  is left to pip (``stop_watching``): PyPI's case costs nothing.
- Storing: the sha256 of a body pip stores goes into the entry's metadata document
  (``digests.with_record``), unless the body is a file whose link carries a hash. A 304 that
  rewrites an entry's metadata carries over the record the entry had.

Only pip's own CacheControl (and pipenv's copy of pip) is watched and recorded: pip's downloader
is what fetches a file once more. The marks live on urllib3's response objects, which pip passes
from the cache to its downloader and back to the cache.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import wrapt

from pip_cache_guard import digests
from pip_cache_guard.hook import never_raises

BODY = "_pip_cache_guard_body"  # the DigestingBody serving a response
RECORD = "_pip_cache_guard_record"  # the record of the entry a response was loaded from
UNRECORDED = "_pip_cache_guard_unrecorded"  # a file whose link carries a hash pip checks

# What CacheControl hands over as a body: bytes (0.12, 0.13), a memoryview of its buffer (0.14+).
_BYTES_LIKE = (bytes, bytearray, memoryview)
_storing = threading.local()  # the body CacheController._cache_set stores apart from its metadata


class DigestingBody(wrapt.ObjectProxy):  # type: ignore[type-arg]
    """A cached body file (or pip <= 23.2's in-memory body) that hashes what is read from it.

    The verdict is reached when the last of its ``size`` bytes is read: True if they match the
    expected digest, False if not; None while it is not read to the end, or not watched."""

    def __init__(self, body: Any, expected: digests.Expected, size: int) -> None:
        super().__init__(body)
        self._self_expected = expected
        self._self_hash: Any = digests.hasher(expected.algorithm)
        self._self_size, self._self_seen = size, 0
        self._self_verdict: bool | None = None
        self._self_watching = True

    def read(self, *args: Any, **kwargs: Any) -> Any:
        data = self.__wrapped__.read(*args, **kwargs)
        self._self_take(data)
        return data

    def read1(self, *args: Any, **kwargs: Any) -> Any:
        data = self.__wrapped__.read1(*args, **kwargs)
        self._self_take(data)
        return data

    def readinto(self, buffer: Any) -> Any:
        count = self.__wrapped__.readinto(buffer)
        self._self_take(memoryview(buffer)[: count or 0])
        return count

    # urllib3 asks the body twice a read whether it is closed (``is_fp_closed``: ``isclosed()``,
    # else ``closed``). Answered here rather than by wrapt's fallback after failed lookups, a read
    # costs a fifth less at pip <= 25.0's 10 kB reads; the answers are the file's own (a file
    # without ``closed`` counts as closed, as urllib3's ``HTTPResponse.closed`` counts it).
    @property
    def closed(self) -> Any:
        return self.__wrapped__.closed

    def isclosed(self) -> Any:
        isclosed = getattr(self.__wrapped__, "isclosed", None)
        return isclosed() if isclosed is not None else getattr(self.__wrapped__, "closed", True)

    def _self_take(self, data: Any) -> None:
        if not self._self_watching:
            return
        try:
            self._self_hash.update(data)
            self._self_seen += len(data)
            if self._self_seen >= self._self_size:
                self._self_watching = False
                if self._self_seen == self._self_size:
                    self._self_verdict = self._self_expected.matches(self._self_hash.hexdigest())
        except Exception:  # not bytes after all: no verdict, and pip reads on as before
            self._self_watching = False

    def stop_watching(self) -> None:
        self._self_watching = False

    @property
    def failed(self) -> digests.Expected | None:
        """The digest the body was read against and failed, if it was read whole and failed."""
        return self._self_expected if self._self_verdict is False else None


class Expectation:
    """What an entry says of its body, read from its document before pip's loader changes it."""

    __slots__ = ("expected", "record", "size")

    def __init__(
        self, expected: digests.Expected | None, record: dict[str, Any] | None, size: int | None
    ) -> None:
        self.expected, self.record, self.size = expected, record, size


@never_raises(None)
def expectation(document: Any, body_size: int | None) -> Expectation | None:
    """What the entry decoded as ``document`` says of its body (in a file of ``body_size`` bytes,
    or inside the document), before pip's loader takes the document apart; None if nothing."""
    record = digests.recorded(document)
    expected = digests.expected_digest(document)
    if record is None and expected is None:
        return None
    if body_size is None:
        inline = document.get("response", {}).get("body")
        body_size = len(inline) if isinstance(inline, bytes) else None
    return Expectation(expected, record, body_size)


@never_raises(None)
def watch(response: Any, expectation: Expectation) -> None:
    """pip's loader built ``response`` from the entry: hash its body as pip reads it, and keep the
    entry's record on it for a 304 to carry over."""
    if expectation.record is not None:
        setattr(response, RECORD, expectation.record)
    body, expected, size = getattr(response, "_fp", None), expectation.expected, expectation.size
    if expected is not None and body is not None and size:
        response._fp = DigestingBody(body, expected, size)
        setattr(response, BODY, response._fp)


@never_raises(None)
def stop_watching(response: Any) -> None:
    """The file ``response`` serves has a link hash pip checks: neither hash nor record it."""
    raw = getattr(response, "raw", None)
    if raw is None:
        return
    setattr(raw, UNRECORDED, True)
    body = getattr(raw, BODY, None)
    if body is not None:
        body.stop_watching()


def failed_digest(response: Any) -> digests.Expected | None:
    """The digest the cached body of ``response`` (a requests response) failed, if it did."""
    body = getattr(getattr(response, "raw", None), BODY, None)
    return body.failed if body is not None else None


@contextlib.contextmanager
def storing_apart(body: Any) -> Iterator[None]:
    """Within ``CacheController._cache_set``: the body it stores apart from its metadata."""
    outer = getattr(_storing, "body", None)
    _storing.body = body
    try:
        yield
    finally:
        _storing.body = outer


@never_raises(None)
def with_record(blob: Any, response: Any, body: Any, pack: Any) -> bytes | None:
    """The metadata ``Serializer.dumps`` made for ``response``, with the guard's record of the
    body added (None: leave it as it is). The body is the one ``_cache_set`` stores apart, else
    the one given to ``dumps``; with none (a 304 that updates the headers), the record the entry
    had is carried over."""
    if not isinstance(blob, bytes) or getattr(response, UNRECORDED, False):
        return None
    apart = getattr(_storing, "body", None)
    stored = apart if apart is not None and len(apart) else body
    record: dict[str, Any] | None = None
    if isinstance(stored, _BYTES_LIKE) and len(stored):
        record = digests.record_of(stored)
    elif apart is None and not body:  # no body: a 304 rewriting the metadata
        record = getattr(response, RECORD, None)
    return digests.with_record(blob, record, pack) if record is not None else None
