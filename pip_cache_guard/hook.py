"""What the guard does inside pip: judge a lookup, delete proven damage, sum up at exit.

``patch`` calls in here from its wrappers; every public function is a boundary with pip and never
raises (an internal error is shown under ``PIP_CACHE_GUARD_DEBUG=1`` and otherwise swallowed, and
pip goes on exactly as it would without the guard).
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from pip_cache_guard import entries, report
from pip_cache_guard.diagnose import (
    DAMAGE_KINDS,
    MISSING_BODY,
    Unpack,
    Verdict,
    body_size_problem,
    diagnose,
)
from pip_cache_guard.ledger import Event, Ledger
from pip_cache_guard.switches import report_internal_error

REPORT_VARIABLE = "PIP_CACHE_GUARD_REPORT"
# What the guard imports only once it needs it (at exit, when there is an incident to keep). pip
# 26.1+ blocks every import once an installation starts, so ``integrations.install`` imports these
# right before that, in runs that install, and only there.
LATE_MODULES = ("pip_cache_guard.history",)


@dataclass
class GuardState:
    """What this process's guard did: which modules it patched and what it saw."""

    ledger: Ledger = field(default_factory=Ledger)
    patch_points: dict[str, str] = field(default_factory=dict)
    pip_version: str | None = None
    verbosity: int | None = None  # pip's own (``-v`` minus ``-q``), once its command started
    exit_handler_registered: bool = False
    # Only pip runs (and other programs using CacheControl) report; the guard's own commands
    # import pip's controller too (doctor, or drive it), but must not touch the user's report,
    # history or stderr at exit.
    reports_at_exit: bool = True


STATE = GuardState()


@dataclass
class Lookup:
    """One cache lookup by a controller, and what ``Serializer.loads`` was given during it."""

    controller: Any
    request: Any
    unpack: Unpack
    key: Callable[[], str]  # the cache key (URL), computed only when needed
    decide_in_loads: bool = False
    data: bytes | None = None
    body_file: Any = None


F = TypeVar("F", bound=Callable[..., Any])


def _never_raises(fallback: Any) -> Callable[[F], F]:
    """The one place where the guard's own errors stop: pip must never see them."""

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def boundary(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            except Exception:
                report_internal_error(function.__name__)
                return fallback

        return boundary  # type: ignore[return-value]

    return decorate


def not_a_pip_run() -> None:
    """Mark this process as one of the guard's own commands: its exit handler stays silent."""
    STATE.reports_at_exit = False


@_never_raises(None)
def import_late_modules() -> None:
    """Import ``LATE_MODULES`` now, while imports are still allowed."""
    for name in LATE_MODULES:
        importlib.import_module(name)


@_never_raises(None)
def note_verbosity(level: Any) -> None:
    """Remember the verbosity pip computed for this run (the summary follows it)."""
    STATE.verbosity = int(level)


@_never_raises(None)
def note_cache_dir(lookup: Lookup) -> None:
    """Remember which cache this process uses, for the report (also when nothing goes wrong)."""
    if STATE.ledger.cache_dir is None:
        cache_dir = _cache_directory(lookup.controller.cache)
        if cache_dir is not None:
            STATE.ledger.note_cache_dir(cache_dir)


@_never_raises(False)
def settle_failure(lookup: Lookup) -> bool:
    """After a load that gave nothing or raised: diagnose what pip was given and act on it.

    Returns True when the entry is proven damaged (so a raising load may become a miss).
    """
    if lookup.data is None:
        return False  # nothing was read: a plain miss, no entry involved
    headers = getattr(lookup.request, "headers", None)
    body = _body_status(lookup.body_file)
    verdict = diagnose(
        lookup.data,
        lookup.unpack,
        dict(headers) if headers is not None else None,
        body.st_size if body is not None else None,
    )
    if verdict.kind == "ok":
        return False  # pip skipped it for a reason we cannot prove to be damage
    _record(lookup, verdict, body)
    return verdict.is_damage


@_never_raises(False)
def settle_hit(lookup: Lookup, response: Any) -> bool:
    """After a load that found an entry: one fstat proves whether its body has the right size.

    Returns True when the body is short or long, or missing from a cache that keeps bodies apart
    (standalone CacheControl serves that as an empty body), so that it is not used.
    """
    if lookup.data is None:
        return False
    if lookup.body_file is None:
        if not callable(getattr(lookup.controller.cache, "get_body", None)):
            return False  # the body lives inside the metadata
        _record(lookup, MISSING_BODY, None)
        return True
    body = _body_status(lookup.body_file)
    if body is None:
        return False
    problem = body_size_problem(int(response.status), response.headers, body.st_size)
    if problem is None:
        return False
    _record(lookup, Verdict("body-mismatch", problem), body)
    lookup.body_file.close()
    return True


def _record(lookup: Lookup, verdict: Verdict, body: os.stat_result | None) -> None:
    """Delete a damaged entry (if the cache is a directory of files) and keep one event for it."""
    assert lookup.data is not None
    cache = lookup.controller.cache
    key = lookup.key()
    cache_dir = _cache_directory(cache)
    metadata_path = _metadata_path(cache, key)
    if cache_dir is None or metadata_path is None:
        reason = f"{verdict.reason}; the cache is not a directory of files"
        STATE.ledger.record("", key, _event(key, "", verdict.kind, reason, "kept", 0))
        return
    action, reason, size = "kept", verdict.reason, 0
    in_progress = (
        entries.written_recently(metadata_path, time.time()) if verdict is MISSING_BODY else None
    )
    if in_progress is not None:
        reason = f"{reason}; written {in_progress:.0f} s ago, so possibly by a writer still at work"
    elif verdict.is_damage:
        body_inode = body.st_ino if body is not None else None
        outcome = entries.delete_entry(cache_dir, metadata_path, lookup.data, body_inode)
        action, size = outcome.action, outcome.bytes_freed
        if outcome.reason:
            reason = f"{reason}; {outcome.reason}"
    if action in report.LEFT_IN_PLACE:
        size = entries.entry_size(metadata_path)  # what is still there
    fingerprint = entries.damage_fingerprint(metadata_path, lookup.data, body)
    event = _event(key, metadata_path, verdict.kind, reason, action, size, fingerprint)
    STATE.ledger.record(cache_dir, key, event)


def _event(
    key: str, cache_file: str, kind: str, reason: str, action: str, size: int, fingerprint: str = ""
) -> Event:
    return Event(report.redact_url(key), cache_file, kind, reason, action, size, fingerprint)


def _cache_directory(cache: Any) -> str | None:
    """The directory of a file cache, absolute (pip passes a str, Poetry a ``Path``)."""
    directory = getattr(cache, "directory", None)
    if isinstance(directory, (str, os.PathLike)):
        return os.path.abspath(os.fspath(directory))
    return None


def _metadata_path(cache: Any, key: str) -> str | None:
    """Ask the cache object where it keeps ``key`` (pip: ``_get_cache_path``, others: ``_fn``)."""
    for name in ("_get_cache_path", "_fn"):
        locate = getattr(cache, name, None)
        if callable(locate):
            return str(locate(key))
    return None


def _body_status(body_file: Any) -> os.stat_result | None:
    """One fstat of the body file pip opened: its size, and its identity for a safe deletion."""
    if body_file is None:
        return None
    try:
        return os.fstat(body_file.fileno())
    except (OSError, AttributeError, ValueError):
        return None


@_never_raises(None)
def at_exit() -> None:
    """Write the JSON report (if asked), remember the incident, print the summary.

    Each step has its own boundary too, so that a failing history never costs the summary."""
    if not STATE.reports_at_exit:
        return
    events = STATE.ledger.events()
    cache_dir = STATE.ledger.cache_dir
    _write_report(events, cache_dir)
    if not events:
        return
    advice = _remember(events, cache_dir or "")
    seen_in = STATE.ledger.event_cache_dirs()
    _print_summary(events, ", ".join(seen_in) if len(seen_in) > 1 else cache_dir, advice or [])


@_never_raises(None)
def _write_report(events: list[Event], cache_dir: str | None) -> None:
    report_path = os.environ.get(REPORT_VARIABLE)
    if report_path:
        data = report.document(events, cache_dir, STATE.pip_version)
        report.write_json_atomically(report_path, data)


@_never_raises(None)
def _remember(events: list[Event], cache_dir: str) -> list[str]:
    """Append this incident to the history; advice if damage keeps hitting this cache."""
    from pip_cache_guard import history  # platformdirs: paid only when there is something to keep

    history.append(cache_dir, STATE.pip_version, events)
    if not any(event.kind in DAMAGE_KINDS for event in events):
        return []
    recent = history.recent_damage(cache_dir)
    if recent < history.RECURRENCE_THRESHOLD:
        return []
    return [
        f"This cache was damaged {recent} times in the past 7 days: that is a sign of a full "
        "or failing disk, not bad luck. Check free space (df -h) and the filesystem's health; "
        "`pip-cache-guard history` lists the incidents."
    ]


@_never_raises(None)
def _print_summary(events: list[Event], cache_dir: str | None, advice: list[str]) -> None:
    level = STATE.verbosity if STATE.verbosity is not None else 0
    if level > -2:
        sys.stderr.write(report.summary(events, cache_dir, level, advice))
        sys.stderr.flush()
