"""What the guard does inside pip: the decisions, one module a concern, and what they share.

The integrations (``pip_cache_guard.integrations``) call the decisions from their wrappers:

- ``lookups``: judge an HTTP-cache lookup, delete and record a damaged entry;
- ``body_digests``: hash a cached body while pip reads it, against the digest its entry gives;
  record the digest of a body pip stores;
- ``rejected_files``: a file pip downloaded from a cache hit and then rejected: evict the entry
  holding exactly those bytes, and record how pip's own downloader fetched it again;
- ``built_wheels``: a wheel pip built and cached that cannot be read (or its ``origin.json``);
- ``pages``: an index page from the cache that pip cannot parse, or that fails its digest: evict,
  one more fetch by pip;
- ``children``: the spool that child pips hand their events over to;
- ``summing_up``: at exit, the JSON report, the history and the summary on stderr.

This package itself keeps only what they share: the boundary (``never_raises``: every public
decision is a boundary with pip and never raises; an internal error is shown under
``PIP_CACHE_GUARD_DEBUG=1`` and otherwise swallowed, and pip goes on exactly as it would without
the guard), this process's state (``STATE``, one for all threads and nested in-process pips),
the one way an event is recorded (``keep``) and where a cache keeps an entry. Patching pip
imports none of it: the first wrapper that needs it does (``integrations.deciding``), or the exit
handler, so a run that never gets there never pays for it; pip 26.1+ runs import it before their
import barrier (``LATE_MODULES``). The classes of these modules are plain classes, not NamedTuples
or dataclasses: they are imported in every pip run that reads its cache, where creating a
NamedTuple costs ~0.15 ms, a dataclass ~0.3.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any, Callable, Literal, TypeVar

from pip_cache_guard._import_hook import import_reaching
from pip_cache_guard.diagnose import DAMAGE_KINDS
from pip_cache_guard.ledger import Event, Ledger
from pip_cache_guard.switches import report_internal_error

if TYPE_CHECKING:
    from pip_cache_guard.hook.built_wheels import Rebuild
    from pip_cache_guard.hook.rejected_files import CachedDownload

# What the guard imports only once it needs it: this package (with ``diagnose`` and ``ledger``)
# at the first wrapper that calls it, and each concern's module at the first wrapper that needs
# that one (``spool`` with the children's, whose variable the wrapper of pip's subprocesses sets);
# what fetches a rejected file again (``integrations.download``, which a pip run imports with its
# downloader); safe deletion and the report (when something is wrong, or a report is asked for),
# the history (at exit, when there is an incident to keep). A healthy pip run never pays for the
# last three. pip 26.1+ blocks every import once an installation starts, so
# ``integrations.install`` imports these right before that, in runs that install, and only there.
LATE_MODULES = (
    "pip_cache_guard.hook",
    "pip_cache_guard.hook.body_digests",
    "pip_cache_guard.hook.lookups",
    "pip_cache_guard.hook.rejected_files",
    "pip_cache_guard.hook.built_wheels",
    "pip_cache_guard.hook.pages",
    "pip_cache_guard.hook.children",
    "pip_cache_guard.hook.summing_up",
    "pip_cache_guard.spool",
    "pip_cache_guard.integrations.download",
    "pip_cache_guard.entries",
    "pip_cache_guard.report",
    "pip_cache_guard.history",
)


# What became of what pip's own code fetched once more (``rejected_files``, ``pages``).
RefetchOutcome = Literal["refetched", "failed", "rejected"]


class GuardState:
    """What this process's guard saw (what it patched, and pip's verbosity: ``PIP_RUN``).

    One for the whole process, kept here for every concern's module: threads and a pip run
    inside another pip's process (a build backend's) must meet the same ledger and spool."""

    def __init__(self) -> None:
        self.ledger = Ledger()
        # Only pip runs (and other programs using CacheControl) report; the guard's own commands
        # import pip's controller too (doctor, or drive it), but must not touch the user's report,
        # history or stderr at exit.
        self.reports_at_exit = True
        # Downloaded files that came from a cache hit, by file name (pip names the file from the
        # response and writes it into a directory of its own); the paths already fetched again
        # once (never twice: a file that fails after a fresh download is not the cache's fault);
        # and the downloader pip made last, which fetches a file again.
        self.cached_downloads: dict[str, CachedDownload] = {}
        self.refetched: set[str] = set()
        self.downloader: Any = None
        # Index pages whose last response came from the HTTP cache: requested URL -> final URL.
        self.cached_pages: dict[str, str] = {}
        self.refetched_pages: set[str] = set()  # one retry per page and process
        self.served_pages: set[str] = set()  # pages pip was served since it was last evicted
        self.rebuilds: list[Rebuild] = []  # damaged built wheels deleted for pip to build again
        # The spool shared with child pips (``spool``): the outermost guarded pip owns it and
        # merges what its children hand over; a child hands its events over instead of reporting.
        self.spool: str | None = None
        self.spool_owner = False


STATE = GuardState()

F = TypeVar("F", bound=Callable[..., Any])


def never_raises(fallback: Any) -> Callable[[F], F]:
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


@never_raises(None)
def import_late_modules() -> None:
    """Import ``LATE_MODULES`` now, while imports are still allowed."""
    for name in LATE_MODULES:
        import_reaching(name)


def keep(
    cache_dir: str,
    key: str,
    cache_file: str,
    kind: str,
    reason: str,
    action: str,
    size: int,
    fingerprint: str = "",
    digest: str = "",
) -> Event:
    """Record the one event of the entry ``key`` (its URL redacted) in this process's ledger."""
    from pip_cache_guard import report  # late: see LATE_MODULES

    redacted = report.redact_url(key)
    event = Event(redacted, cache_file, kind, reason, action, size, fingerprint, cache_dir, digest)
    STATE.ledger.record(cache_dir, key, event)
    return event


def keep_refetch(evicted: Any, what_followed: tuple[str, str, str]) -> None:
    """Record the one event of an entry evicted for pip to fetch once more (a file or a page),
    once pip's second attempt is over: ``what_followed`` is (kind, action, what happened). Only
    damage carries the fingerprint of what was met (the history counts each damage once)."""
    kind, action, what_then = what_followed
    reason = f"{evicted.reason}; {what_then}"
    mark = evicted.fingerprint if kind in DAMAGE_KINDS else ""
    keep(
        evicted.cache_dir,
        evicted.key,
        evicted.cache_file,
        kind,
        reason,
        action,
        evicted.bytes_freed,
        mark,
        evicted.digest,
    )


def cache_directory(cache: Any) -> str | None:
    """The directory of a file cache, absolute (pip passes a str, Poetry a ``Path``)."""
    directory = getattr(cache, "directory", None)
    if isinstance(directory, (str, os.PathLike)):
        return os.path.abspath(os.fspath(directory))
    return None


def metadata_file(cache: Any, key: str) -> str | None:
    """Ask the cache object where it keeps ``key`` (pip: ``_get_cache_path``, others: ``_fn``)."""
    for name in ("_get_cache_path", "_fn"):
        locate = getattr(cache, name, None)
        if callable(locate):
            return str(locate(key))
    return None
