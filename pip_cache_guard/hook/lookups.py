"""HTTP-cache lookups: judge what pip's serializer was given, delete and record proven damage.

A controller's lookup (``Lookup``) is noted before pip reads the entry (``note_entry``) and
settled after: a load that gave nothing or raised (``settle_failure``), or one that found an entry
(``settle_hit``, with the verdict ``judge_prepared`` reached on the document pip decoded).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Any, Callable

from pip_cache_guard.diagnose import (
    MISSING_BODY,
    PIP_VENDORED,
    Unpack,
    Verdict,
    diagnose,
    is_current_format,
    judge_document,
)
from pip_cache_guard.diagnose import (
    Reader as Reader,  # the integrations build one for each lookup
)
from pip_cache_guard.hook import (
    STATE,
    body_digests,
    cache_directory,
    keep,
    metadata_file,
    never_raises,
)
from pip_cache_guard.hook.body_digests import Expectation


class Lookup:
    """One cache lookup by a controller, and what ``Serializer.loads`` was given during it."""

    def __init__(
        self,
        controller: Any,
        request: Any,
        unpack: Unpack,
        key: Callable[[], str],  # the cache key (URL), computed only when needed
        decide_in_loads: bool = False,
        reader: Reader = PIP_VENDORED,  # the CacheControl whose controller runs this lookup
        watches_bodies: bool = False,  # pip's own: bodies are checked against their digest
    ) -> None:
        self.controller = controller
        self.request = request
        self.unpack = unpack
        self.reader = reader
        self.key = key
        self.decide_in_loads = decide_in_loads
        self.watches_bodies = watches_bodies
        self.data: bytes | None = None
        self.body_file: Any = None
        # What ``judge_prepared`` found in the document pip decoded (None: not judged that way),
        # and what the document says its body must hash to (``body_digests``).
        self.verdict: Verdict | None = None
        self.expectation: Expectation | None = None
        self.body: os.stat_result | None = None
        # The entry's metadata file just before pip read it (``note_entry``), if it was taken.
        self.read_identity: os.stat_result | None = None
        # After settle_failure: whether it proved the entry damaged.
        self.damaged: bool | None = None
        self.handled = False  # the guard recorded an event for this lookup's entry


@never_raises(None)
def note_cache_dir(lookup: Lookup) -> None:
    """Remember which cache this process uses, for the report (also when nothing goes wrong)."""
    if STATE.ledger.cache_dir is None:
        cache_dir = cache_directory(lookup.controller.cache)
        if cache_dir is not None:
            STATE.ledger.note_cache_dir(cache_dir)


@never_raises(None)
def note_entry(lookup: Lookup) -> None:
    """Just before pip reads an entry: note which file it is about to read (one stat). Damage
    found in it is then named by that file, the same for every pip that read it, even for one so
    slow to judge it that another pip has meanwhile deleted the entry and stored a fresh body."""
    path = metadata_file(lookup.controller.cache, lookup.key())
    if path is not None:
        with contextlib.suppress(OSError):  # no entry: a plain miss follows
            lookup.read_identity = os.lstat(path)  # never through a link, as deletion


@never_raises(False)
def settle_failure(lookup: Lookup) -> bool:
    """After a load that gave nothing or raised: diagnose what pip was given and act on it.

    Returns True when the entry is proven damaged (so a raising load may become a miss). A lookup
    is judged once: the first call decides, later calls repeat its answer.
    """
    if lookup.damaged is not None:
        return lookup.damaged
    lookup.damaged = False
    if lookup.data is None:
        return False  # nothing was read: a plain miss, no entry involved
    headers = getattr(lookup.request, "headers", None)
    body = _body_status(lookup.body_file)
    verdict = diagnose(
        lookup.data,
        lookup.unpack,
        dict(headers) if headers is not None else None,
        body.st_size if body is not None else None,
        lookup.reader,
    )
    if verdict.kind == "ok":
        return False  # pip skipped it for a reason we cannot prove to be damage
    _record(lookup, verdict, body)
    lookup.handled = True
    lookup.damaged = verdict.is_damage
    return verdict.is_damage


@never_raises(None)
def judge_prepared(lookup: Lookup, document: Any) -> None:
    """pip's serializer decoded ``document`` from ``lookup.data`` and is about to build a response
    from it: judge it now, before pip changes it, so that a hit costs no second decode.

    ``Serializer.loads`` accepts documents whose fields have the wrong type (``status`` as text),
    and pip then crashes on them. One fstat gives the size of a separate body file.
    """
    if lookup.data is None or not is_current_format(lookup.data):
        return  # an older format this pip still reads (CacheControl 0.12: cc=1, cc=2)
    lookup.body = _body_status(lookup.body_file)
    body_size = lookup.body.st_size if lookup.body is not None else None
    lookup.verdict = judge_document(document, None, body_size, lookup.reader)
    if lookup.watches_bodies and not lookup.verdict.is_damage:
        lookup.expectation = body_digests.expectation(document, body_size)


@never_raises(False)
def settle_hit(lookup: Lookup, response: Any) -> bool:
    """After a load that found an entry: True when the entry is damaged, so that pip does not use
    it (deleted and recorded here).

    The verdict is ``judge_prepared``'s; where pip's serializer could not be watched that way, the
    exact bytes are decoded once more with ``diagnose``. A body missing from a cache that keeps
    bodies apart is damage too. The Vary check is left out: a load that returned a response has
    passed it. A hit on an older format is pip's own business.
    """
    if lookup.data is None:
        return False
    if lookup.body_file is None and callable(getattr(lookup.controller.cache, "get_body", None)):
        _record(lookup, MISSING_BODY, None)  # standalone CacheControl serves it as an empty body
        return True
    if not is_current_format(lookup.data):
        return False
    verdict, body = lookup.verdict, lookup.body
    if verdict is None:
        body = _body_status(lookup.body_file)
        body_size = body.st_size if body is not None else None
        verdict = diagnose(lookup.data, lookup.unpack, None, body_size, lookup.reader)
    if not verdict.is_damage:
        return False
    _record(lookup, verdict, body)  # closes the body file pip opened
    return True


# Threads of one process that met the same damaged entry (Poetry's download pool, pipenv's
# resolver) delete and record one at a time: the first deletes it and its event is the one kept;
# the others find it gone (``already-deleted``), and the ledger drops their events.
_RECORDING = threading.Lock()


def _record(lookup: Lookup, verdict: Verdict, body: os.stat_result | None) -> None:
    """Delete a damaged entry (if the cache is a directory of files) and keep one event for it
    (none for a body missing because another process took or replaced the entry meanwhile)."""
    with _RECORDING:
        _record_alone(lookup, verdict, body)


def _record_alone(lookup: Lookup, verdict: Verdict, body: os.stat_result | None) -> None:
    from pip_cache_guard import entries, report  # late: see LATE_MODULES

    assert lookup.data is not None
    cache = lookup.controller.cache
    key = lookup.key()
    cache_dir = cache_directory(cache)
    metadata_path = metadata_file(cache, key)
    if cache_dir is None or metadata_path is None:
        reason = f"{verdict.reason}; the cache is not a directory of files"
        keep("", key, "", verdict.kind, reason, "kept", 0)
        return
    if (
        verdict is MISSING_BODY
        and lookup.read_identity is not None
        and not entries.same_file(lookup.read_identity)(metadata_path)
    ):
        return  # deleted or rewritten since pip read it: by a pip that says so, not damage met
    action, reason, size = "kept", verdict.reason, 0
    in_progress = (
        entries.written_recently(metadata_path, time.time()) if verdict is MISSING_BODY else None
    )
    if in_progress is not None:
        reason = f"{reason}; written {in_progress:.0f} s ago, so possibly by a writer still at work"
    elif verdict.is_damage:
        # This load becomes a miss, so pip never reads the body it opened: close it before the
        # claim, because Windows cannot rename an open file (written to the documentation, run
        # only in the forge's workflow).
        _close(lookup.body_file)
        outcome = entries.delete_entry(
            cache_dir, metadata_path, lookup.data, body, lookup.read_identity
        )
        action, size = outcome.action, outcome.bytes_freed
        if outcome.reason:
            reason = f"{reason}; {outcome.reason}"
    if action in report.LEFT_IN_PLACE:
        size = entries.entry_size(metadata_path)  # what is still there
    identity = lookup.read_identity if lookup.read_identity is not None else body
    fingerprint = entries.damage_fingerprint(metadata_path, lookup.data, identity)
    keep(cache_dir, key, metadata_path, verdict.kind, reason, action, size, fingerprint)


def _close(body_file: Any) -> None:
    if body_file is not None:
        with contextlib.suppress(Exception):  # not a file after all: nothing of ours to release
            body_file.close()


def _body_status(body_file: Any) -> os.stat_result | None:
    """One fstat of the body file pip opened: its size, and its identity for a safe deletion."""
    if body_file is None:
        return None
    try:
        return os.fstat(body_file.fileno())
    except (OSError, AttributeError, ValueError):
        return None
