"""Files pip downloaded from a cache hit and then rejected, and their one re-fetch.

pip rejects a file (a hash mismatch, an archive it cannot read): the entry that holds exactly the
rejected bytes is evicted (``evict_rejected``), pip's own downloader fetches the file once more
(``integrations.download.fetch_again``) and ``settle_refetch`` records how that went. A file
written from a cached body that failed its digest (``hook.body_digests``) goes the same way
(``evict_mismatched``), before pip uses it.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable

from pip_cache_guard import digests
from pip_cache_guard.diagnose import Unpack, stored_body
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


class CachedDownload:
    """A file pip's downloader wrote from a cache hit: what served it, and what it came from."""

    __slots__ = ("adapter", "link", "link_hash", "response", "urls")

    def __init__(
        self,
        link: Any,  # pip's Link: the URL and the hash fragment
        urls: tuple[str, ...],  # the response's URL, then the link's (they differ after a redirect)
        link_hash: tuple[str, str] | None,  # (algorithm, hex digest) the link carries, if any
        adapter: Any,  # the CacheControl adapter that served it: its cache and controller
        response: Any,  # the response itself: whether its body matched its digest
    ) -> None:
        self.link, self.urls, self.link_hash, self.adapter = link, urls, link_hash, adapter
        self.response = response


class Refetch:
    """A rejected file whose cache entry is evicted: pip's downloader is to fetch it once more."""

    __slots__ = ("bytes_freed", "cache_dir", "cache_file", "digest", "download_again",
                 "fingerprint", "key", "path", "reason")  # fmt: skip

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
        self.digest = ""  # where the digest the body failed came from, if that was the reason


@never_raises(None)
def note_download(resp: Any, link: Any, file_name: Callable[[Any, Any], str]) -> None:
    """pip is about to write ``resp``'s body for ``link``: remember it if it is a cache hit.

    A dict entry by the file name pip gives it (``file_name``, pip's own function); no read.
    """
    name = str(file_name(resp, link))
    algorithm, digest = getattr(link, "hash_name", None), getattr(link, "hash", None)
    link_hash = (str(algorithm), str(digest)) if algorithm and digest else None
    if link_hash is not None:
        body_digests.stop_watching(resp)  # pip checks the link's hash itself
    if not getattr(resp, "from_cache", False):
        STATE.cached_downloads.pop(name, None)  # the same name, fetched from the index this time
        return
    link_url = str(getattr(link, "url_without_fragment", "") or "")
    adapter = getattr(resp, "connection", None)
    if not link_url or adapter is None:
        return
    urls = tuple(url for url in (str(getattr(resp, "url", "") or ""), link_url) if url)
    STATE.cached_downloads[name] = CachedDownload(link, urls, link_hash, adapter, resp)


@never_raises(None)
def note_downloader(downloader: Any) -> None:
    """Remember the downloader pip made (the last one: pip makes one per run, with its session)."""
    STATE.downloader = downloader


@never_raises(None)
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
            keep(cache_dir, key, metadata_path, "bad-body", reason, deletion.action, size, mark)
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


@never_raises(None)
def evict_mismatched(path: str) -> tuple[Refetch, digests.Expected] | None:
    """pip's downloader wrote ``path`` from a cached body that did not match its digest (the
    guard's record, or the server's): evict the entry holding those bytes, as for a file pip
    rejected (``evict_rejected``). Returns what to fetch again and the digest it failed."""
    download = STATE.cached_downloads.get(os.path.basename(path))
    expected = body_digests.failed_digest(download.response) if download is not None else None
    if expected is None:
        return None
    refetch = evict_rejected(path, None, f"the cached file does not match {expected.source}")
    if refetch is None:
        return None
    refetch.digest = expected.source
    return refetch, expected


@never_raises("refetched")
def digest_outcome(path: str, expected: digests.Expected) -> RefetchOutcome:
    """Whether the file fetched once more has the digest the evicted body failed: if it does not
    either, the index serves other bytes than that digest says, and the cache was not the cause.
    The guard's own record is no word of the index: a fresh file that differs from it is one the
    index replaced since (or gave one of two pips that stored it at once), and the entry whose
    body did not match its own record was the cache's fault all the same."""
    if expected.is_record:
        return "refetched"
    fresh = _file_digest(path, expected.algorithm)
    return "refetched" if expected.matches(fresh) else "rejected"


@never_raises(None)
def correct_noted_hash(req: Any, path: str) -> None:
    """pip 22.2+ notes the sha256 of a downloaded file whose link has none (``download_info``,
    what ``pip install --report`` tells) before it reads the file; if the guard has fetched that
    file again since, the noted sha256 is of the bytes it threw away: note the fresh file's."""
    download_info = getattr(req, "download_info", None)
    # ArchiveInfo: pip's own (22.2 - 25.x, ``.info``) or packaging's frozen one (26+).
    info = getattr(download_info, "archive_info", None) or getattr(download_info, "info", None)
    hashes = getattr(info, "hashes", None)
    if os.path.abspath(path) not in STATE.refetched or not isinstance(hashes, Mapping):
        return
    noted, fresh = hashes.get("sha256"), _file_digest(path)
    if noted is None or noted == fresh:
        return
    object.__setattr__(info, "hashes", {**hashes, "sha256": fresh})  # frozen on pip 26+
    if getattr(info, "hash", None) == f"sha256={noted}":  # the legacy field (pip 22.2 - 25.x)
        setattr(info, "hash", f"sha256={fresh}")  # noqa: B010 - its setter, whatever info is


_REFETCH_EVENTS: dict[str, tuple[str, str, str]] = {
    "refetched": ("bad-body", "refetched", "evicted and fetched again: the fresh copy is good"),
    "failed": ("bad-body", "deleted", "evicted; fetching it again failed (pip's error says why)"),
    "rejected": (
        "index-mismatch",
        "refetched",
        "a fresh download fails the same way: the index serves the file so (it does not match "
        "its hash or digest, or cannot be read); the cache was not the cause",
    ),
}


@never_raises(None)
def settle_refetch(refetch: Refetch, outcome: RefetchOutcome) -> None:
    """Record the one event of a rejected cached file, once pip's second attempt is over."""
    keep_refetch(refetch, _REFETCH_EVENTS[outcome])


# (cache directory, cache key, metadata file, msgpack decoder) of one URL in pip's HTTP cache.
_Located = tuple[str, str, str, Unpack]


def _locate(adapter: Any, url: str) -> _Located | None:
    """Where pip's cache keeps ``url``, asked from the CacheControl adapter that served it."""
    cache = getattr(adapter, "cache", None)
    controller = getattr(adapter, "controller", None)
    if cache is None or controller is None:
        return None
    key = str(controller.cache_url(url))
    cache_dir = cache_directory(cache)
    metadata_path = metadata_file(cache, key)
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
        digest = digests.hasher(algorithm)  # a link's other algorithm (sha512, md5...): rare
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
        return str(digest.hexdigest())


def _digest(handle: Any) -> str:
    from pip_cache_guard import entries  # late: see LATE_MODULES

    return entries.sha256_hex(handle)
