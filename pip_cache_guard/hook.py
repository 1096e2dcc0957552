"""What the guard does inside pip: judge a lookup, delete proven damage, sum up at exit.

It also judges files pip downloaded from a cache hit and then rejected (``evict_rejected``): the
entry that holds exactly the rejected bytes is evicted, pip's own downloader fetches the file once
more (``integrations.download.fetch_again``) and ``settle_refetch`` records how that went.

The integrations (``pip_cache_guard.integrations``) call in here from their wrappers; every
public function is a boundary with pip and never raises (an internal error is shown under
``PIP_CACHE_GUARD_DEBUG=1`` and otherwise swallowed, and pip goes on exactly as it would without
the guard). Patching pip does not import this module: the first wrapper that needs it does
(``integrations.deciding``), or the exit handler, so a run that never gets there never pays for
it; pip 26.1+ runs import it before their import barrier (``LATE_MODULES``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import sys
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable, Literal, TypeVar

from pip_cache_guard import spool
from pip_cache_guard._import_hook import PIP_RUN, import_reaching
from pip_cache_guard.diagnose import (
    DAMAGE_KINDS,
    MISSING_BODY,
    PIP_VENDORED,
    Unpack,
    Verdict,
    diagnose,
    is_current_format,
    judge_document,
    stored_body,
    wheel_problem,
)
from pip_cache_guard.diagnose import (
    Reader as Reader,  # the integrations build one for each lookup
)
from pip_cache_guard.ledger import Event, Ledger
from pip_cache_guard.switches import REPORT_VARIABLE, report_internal_error

if TYPE_CHECKING:
    from pip_cache_guard import entries

# What pip (22.2+) writes beside the wheels it built: the source they were built from.
ORIGIN_FILE = "origin.json"
# What the guard imports only once it needs it: this module (with ``diagnose``, ``ledger`` and
# ``spool``, whose variable the wrapper of pip's subprocesses sets) at the first wrapper that calls
# it; what fetches a rejected file again
# (``integrations.download``, which a pip run imports with its downloader); safe deletion and the
# report (when something is wrong, or a report is asked for), the history (at exit, when there is
# an incident to keep). A healthy pip run never pays for the last three. pip 26.1+ blocks every
# import once an installation starts, so ``integrations.install`` imports these right before
# that, in runs that install, and only there.
LATE_MODULES = (
    "pip_cache_guard.hook",
    "pip_cache_guard.spool",
    "pip_cache_guard.integrations.download",
    "pip_cache_guard.entries",
    "pip_cache_guard.report",
    "pip_cache_guard.history",
)


# The classes below are plain classes, not NamedTuples or dataclasses: this module is imported in
# every pip run that reads its cache, where creating a NamedTuple costs ~0.15 ms, a dataclass ~0.3.


class CachedDownload:
    """A file pip's downloader wrote from a cache hit: what served it, and what it came from."""

    __slots__ = ("adapter", "link", "link_hash", "urls")

    def __init__(
        self,
        link: Any,  # pip's Link: the URL and the hash fragment
        urls: tuple[str, ...],  # the response's URL, then the link's (they differ after a redirect)
        link_hash: tuple[str, str] | None,  # (algorithm, hex digest) the link carries, if any
        adapter: Any,  # the CacheControl adapter that served it: its cache and controller
    ) -> None:
        self.link, self.urls, self.link_hash, self.adapter = link, urls, link_hash, adapter


class Refetch:
    """A rejected file whose cache entry is evicted: pip's downloader is to fetch it once more."""

    __slots__ = ("bytes_freed", "cache_dir", "cache_file", "download_again", "fingerprint", "key",
                 "path", "reason")  # fmt: skip

    def __init__(
        self,
        path: str,
        cache_dir: str,
        key: str,
        cache_file: str,
        bytes_freed: int,
        reason: str,
        fingerprint: str,  # the damaged state met (the history counts each once)
        download_again: Callable[[], str],
    ) -> None:
        self.path, self.cache_dir, self.key, self.cache_file = path, cache_dir, key, cache_file
        self.bytes_freed, self.reason, self.fingerprint = bytes_freed, reason, fingerprint
        self.download_again = download_again


RefetchOutcome = Literal["refetched", "failed", "rejected"]


class GuardState:
    """What this process's guard saw (what it patched, and pip's verbosity: ``PIP_RUN``)."""

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
    ) -> None:
        self.controller = controller
        self.request = request
        self.unpack = unpack
        self.reader = reader
        self.key = key
        self.decide_in_loads = decide_in_loads
        self.data: bytes | None = None
        self.body_file: Any = None
        # What ``judge_prepared`` found in the document pip decoded (None: not judged that way).
        self.verdict: Verdict | None = None
        self.body: os.stat_result | None = None
        # The entry's metadata file just before pip read it (``note_entry``), if it was taken.
        self.read_identity: os.stat_result | None = None
        # After settle_failure: whether it proved the entry damaged.
        self.damaged: bool | None = None
        self.handled = False  # the guard recorded an event for this lookup's entry


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
        import_reaching(name)


@_never_raises(None)
def note_cache_dir(lookup: Lookup) -> None:
    """Remember which cache this process uses, for the report (also when nothing goes wrong)."""
    if STATE.ledger.cache_dir is None:
        cache_dir = _cache_directory(lookup.controller.cache)
        if cache_dir is not None:
            STATE.ledger.note_cache_dir(cache_dir)


@_never_raises(None)
def note_entry(lookup: Lookup) -> None:
    """Just before pip reads an entry: note which file it is about to read (one stat). Damage
    found in it is then named by that file, the same for every pip that read it, even for one so
    slow to judge it that another pip has meanwhile deleted the entry and stored a fresh body."""
    path = _metadata_path(lookup.controller.cache, lookup.key())
    if path is not None:
        with contextlib.suppress(OSError):  # no entry: a plain miss follows
            lookup.read_identity = os.lstat(path)  # never through a link, as deletion


@_never_raises(False)
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


@_never_raises(None)
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


@_never_raises(False)
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


# A wheel file in pip's wheel cache: name, inode and mtime (an inode freed by a deletion may be
# given to the very next file, the rebuilt wheel).
WheelFile = tuple[str, int, int]


class Rebuild:
    """A damaged built wheel deleted for pip to build again: ``rebuilt`` only if it did."""

    __slots__ = ("before", "cache_dir", "directory", "event", "key")

    def __init__(
        self, cache_dir: str, key: str, event: Event, directory: str, before: set[WheelFile]
    ) -> None:
        self.cache_dir, self.key, self.event = cache_dir, key, event
        self.directory, self.before = directory, before  # the wheels there before the deletion


@_never_raises(False)
def settle_built_wheel(
    cache: Any, found: Any, link: Any, origin_problem: Callable[[str], str | None] | None
) -> bool:
    """Before pip uses a wheel it built and cached: True when pip must not use it.

    ``cache`` is pip's ``SimpleWheelCache``, ``found`` the link of the wheel it picked for the sdist
    ``link``. A wheel that is not readable (``diagnose.wheel_problem``) is deleted, so pip builds
    it again from the sdist in this run (``rebuilt`` once the build is there, at exit; ``deleted``
    if it never came). Any wheel proven bad is a miss, also when it could not be deleted (pip's new
    build then replaces it). ``origin_problem`` is given only for a pip that stops on a damaged
    ``origin.json`` (22.2 - 23.1: pip's own reader): that file alone goes (``_settle_origin``);
    the wheel is judged by its own bytes, never by the file beside it.
    """
    from pip_cache_guard import entries, report  # late: see LATE_MODULES

    wheels_dir = os.path.abspath(os.path.join(cache.cache_dir, "wheels"))
    wheel_path = str(found.file_path)
    try:
        diagnosed = os.lstat(wheel_path)
    except OSError:
        return False  # gone: pip will not find it either
    problem = wheel_problem(wheel_path)
    if origin_problem is not None:
        _settle_origin(wheels_dir, str(found.url), wheel_path, origin_problem, problem is None)
    if problem is None:
        return False
    directory = os.path.dirname(wheel_path)
    before = _wheels_in(directory)
    outcome = entries.delete_file(wheels_dir, wheel_path, entries.same_file(diagnosed))
    why = f"{problem}; built from {report.redact_url(str(link.url))}"
    reason = f"{why}; {outcome.reason}" if outcome.reason else why
    mark = entries.damage_fingerprint(wheel_path, b"", diagnosed)
    key, action = str(found.url), outcome.action
    event = _keep(
        wheels_dir, key, wheel_path, "bad-wheel", reason, action, outcome.bytes_freed, mark
    )
    if action == "deleted":
        STATE.rebuilds.append(Rebuild(wheels_dir, key, event, directory, before))
    return True


def _settle_origin(
    wheels_dir: str,
    wheel_url: str,
    wheel_path: str,
    origin_problem: Callable[[str], str | None],
    wheel_is_good: bool,
) -> None:
    """Delete the damaged ``origin.json`` beside a cached wheel, for a pip that would stop on it.

    pip then uses the wheel as one cached before pip wrote origin files (what pip 23.2+ do with a
    damaged one), and writes a fresh file when it next builds it (it would stop on the damaged
    one then too). Deleted only if it still is damaged when taken (pip rewrites it in place).
    """
    from pip_cache_guard import entries  # late: see LATE_MODULES

    origin_path = os.path.join(os.path.dirname(wheel_path), ORIGIN_FILE)
    try:
        noted = os.lstat(origin_path)
    except OSError:
        return  # a wheel built by a pip before 22.2
    problem = origin_problem(origin_path)
    if problem is None:
        return
    deletion = entries.delete_file(
        wheels_dir, origin_path, lambda claimed: origin_problem(claimed) is not None
    )
    beside = os.path.basename(wheel_path)
    reason = f"the {ORIGIN_FILE} beside {beside} is damaged ({problem}) and this pip stops on it"
    if wheel_is_good:
        reason = f"{reason}; the wheel itself is good and is used"
    reason = f"{reason}; {deletion.reason}" if deletion.reason else reason
    url = f"{wheel_url.rpartition('/')[0]}/{ORIGIN_FILE}"
    mark = entries.damage_fingerprint(origin_path, b"", noted)
    _keep(wheels_dir, url, origin_path, "bad-wheel", reason, deletion.action,
          deletion.bytes_freed, mark)  # fmt: skip


def _wheels_in(directory: str) -> set[WheelFile]:
    """The wheels in one directory of pip's wheel cache."""
    found = set()
    with contextlib.suppress(OSError), os.scandir(directory) as listing:
        for item in listing:
            if item.name.endswith(".whl") and item.is_file(follow_symlinks=False):
                status = item.stat(follow_symlinks=False)
                found.add((item.name, status.st_ino, status.st_mtime_ns))
    return found


@_never_raises(None)
def _settle_rebuilds() -> None:
    """At exit: a deleted built wheel is ``rebuilt`` if pip's build put a readable wheel where it
    was; otherwise it stays ``deleted`` (the build failed, or pip never needed it)."""
    for rebuild in STATE.rebuilds:
        new = _wheels_in(rebuild.directory) - rebuild.before
        if any(wheel_problem(os.path.join(rebuild.directory, name)) is None for name, *_ in new):
            reason = f"{rebuild.event.reason}; pip built it again from the sdist in this run"
            event = rebuild.event._replace(action="rebuilt", reason=reason)
            STATE.ledger.settle(rebuild.cache_dir, rebuild.key, event)


@_never_raises(None)
def note_page(url: str, response: Any) -> None:
    """Remember whether pip got the index page at ``url`` from its HTTP cache (a 304 included),
    and that a page was served at all (what a page fetched once more needs to know)."""
    STATE.served_pages.add(url)
    if getattr(response, "from_cache", False) is True:
        STATE.cached_pages[url] = str(getattr(response, "url", None) or url)
    else:
        STATE.cached_pages.pop(url, None)


class PageRefetch:
    """A cached page pip could not parse, evicted: pip's own code is to fetch it once more."""

    __slots__ = ("bytes_freed", "cache_dir", "cache_file", "fingerprint", "key", "reason", "url")

    def __init__(
        self, url: str, cache_dir: str, key: str, cache_file: str, freed: int, reason: str,
        fingerprint: str,
    ) -> None:  # fmt: skip
        self.url, self.cache_dir, self.key, self.cache_file = url, cache_dir, key, cache_file
        self.bytes_freed, self.reason, self.fingerprint = freed, reason, fingerprint


@_never_raises(None)
def settle_page(locate: Callable[[], tuple[Any, str]], error: Exception) -> PageRefetch | None:
    """pip could not parse an index page: if it came from the cache, evict it and return what
    pip's own code is to fetch once more (``settle_page_refetch`` then tells how that went).

    ``locate`` gives pip's session and the page's URL. The entry goes through the guard's safe
    deletion and then pip's own cache object (``cache.delete``), so that nothing of it is left to
    revalidate: a 304 would serve the damaged body again. One retry per page: a page that came
    from the network, or was fetched once more already, is not cache damage (None: pip's error
    stands), nor is one that could not be removed (None, with an event).
    """
    from pip_cache_guard import entries  # late: see LATE_MODULES

    session, url = locate()
    url = url.split("#", 1)[0]
    served = STATE.cached_pages.get(url)
    if served is None or url in STATE.refetched_pages:
        return None
    STATE.refetched_pages.add(url)
    adapter = session.get_adapter(served)
    cache, controller = adapter.cache, adapter.controller
    key = str(controller.cache_url(served))
    reason = f"pip cannot parse the cached page ({type(error).__name__}: {error})"
    cache_dir = _cache_directory(cache)
    metadata_path = _metadata_path(cache, key)
    STATE.served_pages.discard(url)  # from now on: what the second attempt was served
    if cache_dir is None or metadata_path is None:
        cache.delete(key)  # not a directory of files: pip's cache object is the only way
        return PageRefetch(url, "", key, "", 0, reason, "")
    outcome, fingerprint = _delete_page_files(cache_dir, metadata_path)
    if outcome.action not in ("deleted", "already-deleted"):  # gone either way: fetch again
        why = f"{reason}; {outcome.reason}"
        size = entries.entry_size(metadata_path)
        _keep(cache_dir, key, metadata_path, "bad-page", why, outcome.action, size, fingerprint)
        return None
    with contextlib.suppress(OSError):  # whatever else pip's cache object keeps for it
        cache.delete(key)
    return PageRefetch(url, cache_dir, key, metadata_path, outcome.bytes_freed, reason, fingerprint)


# What became of a page fetched once more, as kind, action and what followed.
_PAGE_REFETCH_EVENTS: dict[RefetchOutcome, tuple[str, str, str]] = {
    "refetched": ("bad-page", "refetched", "evicted and fetched again: the fresh page is good"),
    "failed": ("bad-page", "deleted", "evicted; fetching it again failed (pip says why)"),
    "rejected": (
        "index-mismatch",
        "refetched",
        "the page fetched afresh fails the same way: the index serves it so; the cache was not "
        "the cause",
    ),
}


@_never_raises(None)
def settle_page_refetch(refetch: PageRefetch, parsed: bool) -> None:
    """Record the one event of an evicted page, once pip's second attempt is over: ``parsed``
    says whether pip's code got through it, ``note_page`` whether a page was served at all (pip
    turns an index that is down into an empty list of links, not an error)."""
    served = refetch.url in STATE.served_pages
    outcome: RefetchOutcome = "failed" if not served else "refetched" if parsed else "rejected"
    kind, action, what_then = _PAGE_REFETCH_EVENTS[outcome]
    mark = refetch.fingerprint if kind in DAMAGE_KINDS else ""
    _keep(
        refetch.cache_dir, refetch.key, refetch.cache_file, kind,
        f"{refetch.reason}; {what_then}", action, refetch.bytes_freed, mark,
    )  # fmt: skip


def _delete_page_files(cache_dir: str, metadata_path: str) -> tuple[entries.Deletion, str]:
    """Delete a page's entry as it is now (its body, if separate, as it is seen here; the
    metadata file noted before it is read, so that a pair rewritten meanwhile stays whole), and
    name the damaged state met (``entries.damage_fingerprint``; "" when it was gone already)."""
    from pip_cache_guard import entries  # late: see LATE_MODULES

    try:
        read = os.lstat(metadata_path)
    except OSError:
        read = None
    data = entries.read_exact(metadata_path)
    if data is None or read is None:
        return entries.Deletion("already-deleted", reason="already gone"), ""
    try:
        body: os.stat_result | None = os.lstat(entries.body_path(metadata_path))
    except OSError:
        body = None  # pip up to 23.2 keeps the body inside the metadata file
    fingerprint = entries.damage_fingerprint(metadata_path, data, read)
    return entries.delete_entry(cache_dir, metadata_path, data, body, read), fingerprint


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
    cache_dir = _cache_directory(cache)
    metadata_path = _metadata_path(cache, key)
    if cache_dir is None or metadata_path is None:
        reason = f"{verdict.reason}; the cache is not a directory of files"
        _keep("", key, "", verdict.kind, reason, "kept", 0)
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
        # claim, because Windows cannot rename an open file.
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
    _keep(cache_dir, key, metadata_path, verdict.kind, reason, action, size, fingerprint)


def _keep(
    cache_dir: str,
    key: str,
    cache_file: str,
    kind: str,
    reason: str,
    action: str,
    size: int,
    fingerprint: str = "",
) -> Event:
    """Record the one event of the entry ``key`` (its URL redacted) in this process's ledger."""
    from pip_cache_guard import report  # late: see LATE_MODULES

    redacted = report.redact_url(key)
    event = Event(redacted, cache_file, kind, reason, action, size, fingerprint, cache_dir)
    STATE.ledger.record(cache_dir, key, event)
    return event


def _cache_directory(cache: Any) -> str | None:
    """The directory of a file cache, absolute (pip passes a str, Poetry a ``Path``)."""
    directory = getattr(cache, "directory", None)
    if isinstance(directory, (str, os.PathLike)):
        return os.path.abspath(os.fspath(directory))
    return None


@_never_raises(None)
def note_download(resp: Any, link: Any, file_name: Callable[[Any, Any], str]) -> None:
    """pip is about to write ``resp``'s body for ``link``: remember it if it is a cache hit.

    A dict entry by the file name pip gives it (``file_name``, pip's own function); no read.
    """
    name = str(file_name(resp, link))
    if not getattr(resp, "from_cache", False):
        STATE.cached_downloads.pop(name, None)  # the same name, fetched from the index this time
        return
    link_url = str(getattr(link, "url_without_fragment", "") or "")
    adapter = getattr(resp, "connection", None)
    if not link_url or adapter is None:
        return
    algorithm, digest = getattr(link, "hash_name", None), getattr(link, "hash", None)
    link_hash = (str(algorithm), str(digest)) if algorithm and digest else None
    urls = tuple(url for url in (str(getattr(resp, "url", "") or ""), link_url) if url)
    STATE.cached_downloads[name] = CachedDownload(link, urls, link_hash, adapter)


@_never_raises(None)
def note_downloader(downloader: Any) -> None:
    """Remember the downloader pip made (the last one: pip makes one per run, with its session)."""
    STATE.downloader = downloader


@_never_raises(None)
def evict_rejected(path: str, gots: Mapping[str, Any] | None, problem: str) -> Refetch | None:
    """pip rejected ``path``: if it came from a cache hit, evict the entry holding these bytes.

    ``gots`` are the digests pip computed (``HashMismatch.gots``). Returns what pip's downloader
    is to fetch again, or None to let pip's own error stand (and say nothing) when the file did
    not come from the cache or was fetched again once already, or when the cached copy is what
    the index itself says (its hash equals the link's, whichever digests pip computed: then the
    expected hash, from a requirements file, or pip's policy is what refuses it); None too,
    with an event, when the entry could not be removed.
    """
    from pip_cache_guard import entries  # late: see LATE_MODULES

    path = os.path.abspath(path)
    download = STATE.cached_downloads.pop(os.path.basename(path), None)
    downloader = STATE.downloader
    if download is None or downloader is None or path in STATE.refetched:
        return None
    STATE.refetched.add(path)
    rejected = _file_digest(path)
    if download.link_hash is not None and _is_published(path, download.link_hash, gots, rejected):
        return None  # the cached copy is what the index says: a fresh one would be the same
    held = [
        (located, deletion)
        for url in dict.fromkeys(download.urls)
        if (located := _locate(download.adapter, url)) is not None
        for deletion in [_evict_holding(located, rejected)]
        if deletion is not None
    ]
    for located, deletion in held:
        if deletion.action != "deleted":  # a fresh download would be served the same bytes
            cache_dir, key, metadata_path, _ = located
            reason = f"{problem}; {deletion.reason}" if deletion.reason else problem
            size = entries.entry_size(metadata_path)
            mark = entries.damage_fingerprint(metadata_path, rejected.encode(), None)
            _keep(cache_dir, key, metadata_path, "bad-body", reason, deletion.action, size, mark)
            return None
    where = held[0][0] if held else _locate(download.adapter, download.urls[0])
    if where is None:
        return None
    cache_dir, key, metadata_path, _ = where
    freed = sum(deletion.bytes_freed for _, deletion in held)
    link, location = download.link, os.path.dirname(path)

    def download_again() -> str:
        return str(downloader(link, location)[0])

    mark = entries.damage_fingerprint(metadata_path, rejected.encode(), None)
    return Refetch(path, cache_dir, key, metadata_path, freed, problem, mark, download_again)


_REFETCH_EVENTS: dict[str, tuple[str, str, str]] = {
    "refetched": ("bad-body", "refetched", "evicted and fetched again: the fresh copy is good"),
    "failed": ("bad-body", "deleted", "evicted; fetching it again failed (pip's error says why)"),
    "rejected": (
        "index-mismatch",
        "refetched",
        "a fresh download fails the same way: the index serves the file so (it does not match "
        "its hash, or cannot be read); the cache was not the cause",
    ),
}


@_never_raises(None)
def settle_refetch(refetch: Refetch, outcome: RefetchOutcome) -> None:
    """Record the one event of a rejected cached file, once pip's second attempt is over."""
    kind, action, what_then = _REFETCH_EVENTS[outcome]
    reason = f"{refetch.reason}; {what_then}"
    mark = refetch.fingerprint if kind in DAMAGE_KINDS else ""
    _keep(
        refetch.cache_dir, refetch.key, refetch.cache_file, kind, reason, action,
        refetch.bytes_freed, mark,
    )  # fmt: skip


# (cache directory, cache key, metadata file, msgpack decoder) of one URL in pip's HTTP cache.
_Located = tuple[str, str, str, Unpack]


def _locate(adapter: Any, url: str) -> _Located | None:
    """Where pip's cache keeps ``url``, asked from the CacheControl adapter that served it."""
    cache = getattr(adapter, "cache", None)
    controller = getattr(adapter, "controller", None)
    if cache is None or controller is None:
        return None
    key = str(controller.cache_url(url))
    cache_dir = _cache_directory(cache)
    metadata_path = _metadata_path(cache, key)
    package = type(controller).__module__.rpartition(".")[0]
    msgpack = getattr(sys.modules.get(f"{package}.serialize"), "msgpack", None)
    if cache_dir is None or metadata_path is None or msgpack is None:
        return None

    def unpack(payload: bytes) -> Any:
        return msgpack.loads(payload, raw=False)

    return cache_dir, key, metadata_path, unpack


def _evict_holding(located: _Located, rejected: str) -> entries.Deletion | None:
    """Delete the entry if its body is exactly the rejected file (sha256); None if it is not.
    The claim of the file holding the rejected bytes carries their sha256 as proof."""
    from pip_cache_guard import entries  # late: see LATE_MODULES

    cache_dir, _, metadata_path, unpack = located
    metadata = entries.read_exact(metadata_path)
    if metadata is None:
        return None
    body = entries.open_exact(entries.body_path(metadata_path))
    if body is None:  # pip <= 23.2: the body is inside the metadata file
        inline = stored_body(metadata, unpack)
        if inline is None or hashlib.sha256(inline).hexdigest() != rejected:
            return None
        proof = hashlib.sha256(metadata).hexdigest()  # the file holding the rejected bytes
        return entries.delete_entry(cache_dir, metadata_path, metadata, None, proven_bad=proof)
    with body:
        judged = os.fstat(body.fileno())
        if _digest(body) != rejected:
            return None
    return entries.delete_entry(cache_dir, metadata_path, metadata, judged, proven_bad=rejected)


def _is_published(
    path: str, link_hash: tuple[str, str], gots: Mapping[str, Any] | None, sha256: str
) -> bool:
    """Whether the file has the hash the index published for it (the link's). pip computes only
    the algorithms it expects (a requirements file's sha512 against a link's sha256), so the
    digest is pip's if it has it, else the file's ``sha256`` the guard has, else read once."""
    algorithm, expected = link_hash
    got = gots.get(algorithm) if gots is not None else None
    if got is not None:
        digest = str(got.hexdigest())
    elif algorithm == "sha256":
        digest = sha256
    elif algorithm in hashlib.algorithms_available:
        digest = _file_digest(path, algorithm)
    else:
        return False
    return digest.lower() == expected.lower()


def _file_digest(path: str, algorithm: str = "sha256") -> str:
    with open(path, "rb") as handle:
        if algorithm == "sha256":
            return _digest(handle)
        digest = hashlib.new(algorithm)  # a link's other algorithm (sha512, md5...): rare
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
        return digest.hexdigest()


def _digest(handle: Any) -> str:
    from pip_cache_guard import entries  # late: see LATE_MODULES

    return entries.sha256_hex(handle)


def _metadata_path(cache: Any, key: str) -> str | None:
    """Ask the cache object where it keeps ``key`` (pip: ``_get_cache_path``, others: ``_fn``)."""
    for name in ("_get_cache_path", "_fn"):
        locate = getattr(cache, name, None)
        if callable(locate):
            return str(locate(key))
    return None


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


@_never_raises(None)
def join_spool() -> None:
    """If a guarded pip started this process, hand events to it at exit instead of reporting."""
    if STATE.spool is None:
        STATE.spool = spool.inherited(os.environ)


@_never_raises(None)
def spool_for_children() -> str | None:
    """The spool for a subprocess pip starts: the inherited one, or this process's own."""
    join_spool()
    if STATE.spool is None:
        STATE.spool, STATE.spool_owner = spool.new_path(), True
    return STATE.spool


@_never_raises(None)
def at_exit() -> None:
    """Write the JSON report (if asked), remember the incident, print the summary.

    A child pip (one a guarded pip started: ``join_spool``) hands its events to the pip that
    started it instead; that pip first merges what its children handed over. Each step has its
    own boundary too, so that a failing history never costs the summary."""
    if not STATE.reports_at_exit:
        return
    _settle_rebuilds()
    join_spool()
    if STATE.spool is not None and not STATE.spool_owner:
        if not STATE.ledger.events() or _hand_over(STATE.spool):
            return  # a child pip: the pip that started it reports (if the hand-over failed: we)
    elif STATE.spool is not None:
        _merge_children(STATE.spool)
    events = STATE.ledger.events()
    cache_dir = STATE.ledger.cache_dir
    _write_report(events, cache_dir)
    if not events:
        return
    advice = _remember(events, cache_dir or "")
    _print_summary(events, cache_dir, advice or [])


@_never_raises(False)
def _hand_over(path: str) -> bool:
    spool.hand_over(path, STATE.ledger.events(), STATE.ledger.cache_dir)
    return True


@_never_raises(None)
def _merge_children(path: str) -> None:
    """Add what child pips handed over to this pip's events, each entry once."""
    known = {event.cache_file for event in STATE.ledger.events() if event.cache_file}
    for child_cache_dir, event in spool.collect(path):
        if event.cache_file and event.cache_file in known:
            continue
        known.add(event.cache_file)
        if child_cache_dir:
            STATE.ledger.note_cache_dir(child_cache_dir)
        cache_dir = event.cache_dir or child_cache_dir  # the cache the child found it in
        STATE.ledger.record(cache_dir, event.url, event._replace(cache_dir=cache_dir))


@_never_raises(None)
def _write_report(events: list[Event], cache_dir: str | None) -> None:
    report_path = os.environ.get(REPORT_VARIABLE)
    if report_path:
        from pip_cache_guard import report  # late: see LATE_MODULES

        data = report.document(events, cache_dir, PIP_RUN.pip_version())
        report.write_json_atomically(report_path, data)


@_never_raises(None)
def _remember(events: list[Event], cache_dir: str) -> list[str]:
    """Append this incident to the history, one line for each cache its events are in (a child
    pip's may differ from this pip's); advice for each cache that damage keeps hitting."""
    # platformdirs: paid only when there is something to keep, found where pip hides it
    import_reaching("pip_cache_guard.history")
    from pip_cache_guard import history, report  # late: see LATE_MODULES

    by_cache = report.by_cache_dir(events, cache_dir)
    advice = []
    for where, found in by_cache.items():
        history.append(where, PIP_RUN.pip_version(), found)
        if not any(event.kind in DAMAGE_KINDS for event in found):
            continue
        recent = history.recent_damage(where)
        if recent >= history.RECURRENCE_THRESHOLD:
            subject = "This cache" if len(by_cache) == 1 else f"The cache {where}"
            advice.append(
                f"{subject} was damaged {recent} times in the past 7 days: that is a sign of a "
                "full or failing disk, not bad luck. Check free space (df -h) and the "
                "filesystem's health; `pip-cache-guard history` lists the incidents."
            )
    return advice


@_never_raises(None)
def _print_summary(events: list[Event], cache_dir: str | None, advice: list[str]) -> None:
    from pip_cache_guard import report  # late: see LATE_MODULES

    level = PIP_RUN.verbosity if PIP_RUN.verbosity is not None else 0
    if level > -2:
        sys.stderr.write(report.summary(events, cache_dir, level, advice))
        sys.stderr.flush()
