"""The incidents of this process: one event per cache entry, however often pip loads it.

pip 23.3+ loads a damaged entry twice per download (lookup, then conditional headers), and pip's
build steps may hit it again; users want it counted once. Thread-safe, because pip downloads from
worker threads in some commands.
"""

from __future__ import annotations

import threading
from typing import NamedTuple


class Event(NamedTuple):
    """One cache entry the guard handled. ``url`` is already redacted. ``fingerprint`` names the
    damaged state met (``entries.damage_fingerprint``); it goes to the history, not the report.
    ``cache_dir`` is the cache the entry is in ("" when the cache is not a directory): a child pip
    may use another cache than the pip that started it, and built wheels live beside the HTTP cache.
    ``digest`` says where the digest a body failed came from ("" when no digest was involved).

    A NamedTuple, not a dataclass: this module is imported inside every pip run, where creating a
    frozen dataclass costs about half a millisecond.
    """

    url: str
    cache_file: str
    kind: str
    reason: str
    action: str
    bytes: int
    fingerprint: str = ""
    cache_dir: str = ""
    digest: str = ""


class Ledger:
    """Events of this process, in the order first seen, keyed by (cache directory, URL)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[tuple[str, str], Event] = {}
        self.cache_dir: str | None = None

    def record(self, cache_dir: str, url: str, event: Event) -> bool:
        """Keep ``event`` unless this entry already has one; True if it was kept."""
        with self._lock:
            if (cache_dir, url) in self._events:
                return False
            self._events[(cache_dir, url)] = event
            return True

    def settle(self, cache_dir: str, url: str, event: Event) -> None:
        """Replace the event of this entry, once what became of it is known (a build at exit)."""
        with self._lock:
            if (cache_dir, url) in self._events:
                self._events[(cache_dir, url)] = event

    def note_cache_dir(self, cache_dir: str) -> None:
        """Remember the first cache directory the guard watched (for the report)."""
        with self._lock:
            if self.cache_dir is None:
                self.cache_dir = cache_dir

    def events(self) -> list[Event]:
        with self._lock:
            return list(self._events.values())
