"""Index pages from the HTTP cache that are damaged: evict, and one more fetch by pip.

``note_page`` remembers which pages came from the cache; ``settle_page`` evicts one pip could not
parse (``unparsable`` says why), ``settle_failed_digest`` one whose body, read whole, failed the
digest its entry gives (before pip parses it: a page that still parses would give pip wrong links
silently); ``settle_page_refetch`` records how pip's own second attempt went.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any, Callable

from pip_cache_guard.hook import (
    STATE,
    RefetchOutcome,
    body_digests,
    cache_directory,
    keep,
    keep_refetch,
    metadata_file,
    never_raises,
)

if TYPE_CHECKING:
    from pip_cache_guard import entries


@never_raises(None)
def note_page(url: str, response: Any) -> None:
    """Remember whether pip got the index page at ``url`` from its HTTP cache (a 304 included),
    and that a page was served at all (what a page fetched once more needs to know)."""
    STATE.served_pages.add(url)
    if getattr(response, "from_cache", False) is True:
        STATE.cached_pages[url] = str(getattr(response, "url", None) or url)
    else:
        STATE.cached_pages.pop(url, None)


class PageRefetch:
    """A damaged cached page, evicted: pip's own code is to fetch it once more."""

    __slots__ = ("bytes_freed", "cache_dir", "cache_file", "digest", "fingerprint", "key", "reason",
                 "url")  # fmt: skip

    def __init__(
        self, url: str, cache_dir: str, key: str, cache_file: str, freed: int, reason: str,
        fingerprint: str,
    ) -> None:  # fmt: skip
        self.url, self.cache_dir, self.key, self.cache_file = url, cache_dir, key, cache_file
        self.bytes_freed, self.reason, self.fingerprint = freed, reason, fingerprint
        self.digest = ""  # where the digest the body failed came from, if that was the reason


@never_raises("pip cannot parse the cached page")
def unparsable(error: Exception) -> str:
    """The reason of a page pip's parser raised ``error`` for."""
    return f"pip cannot parse the cached page ({type(error).__name__}: {error})"


@never_raises(None)
def settle_failed_digest(session: Any, url: str, response: Any) -> PageRefetch | None:
    """pip got the page at ``url`` and read it whole (``resp.content``), not parsed yet: if its
    cached body failed the digest its entry gives, evict it as ``settle_page`` does."""
    expected = body_digests.failed_digest(response)
    if expected is None:
        return None
    reason = f"the cached page does not match {expected.source}"
    refetch = settle_page(lambda: (session, url), reason)
    if refetch is not None:
        refetch.digest = expected.source
    return refetch


@never_raises(None)
def settle_page(locate: Callable[[], tuple[Any, str]], reason: str) -> PageRefetch | None:
    """A cached index page is damaged (``reason`` says how): if it came from the cache, evict it
    and return what pip's own code is to fetch once more (``settle_page_refetch`` then tells how
    that went).

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
    cache_dir = cache_directory(cache)
    metadata_path = metadata_file(cache, key)
    STATE.served_pages.discard(url)  # from now on: what the second attempt was served
    if cache_dir is None or metadata_path is None:
        cache.delete(key)  # not a directory of files: pip's cache object is the only way
        return PageRefetch(url, "", key, "", 0, reason, "")
    outcome, fingerprint = _delete_page_files(cache_dir, metadata_path)
    if outcome.action not in ("deleted", "already-deleted"):  # gone either way: fetch again
        why = f"{reason}; {outcome.reason}"
        size = entries.entry_size(metadata_path)
        keep(cache_dir, key, metadata_path, "bad-page", why, outcome.action, size, fingerprint)
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


@never_raises(None)
def settle_page_refetch(refetch: PageRefetch, good: bool) -> None:
    """Record the one event of an evicted page, once pip's second attempt is over: ``good``
    says whether pip's code got through it, ``note_page`` whether a page was served at all (pip
    turns an index that is down into an empty list of links, not an error)."""
    served = refetch.url in STATE.served_pages
    outcome: RefetchOutcome = "failed" if not served else "refetched" if good else "rejected"
    keep_refetch(refetch, _PAGE_REFETCH_EVENTS[outcome])


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
