"""A small, bounded record of past incidents, so that damage that keeps coming back is noticed.

One JSON line per guarded process that found something (an incident), appended with a single
``write`` to a file opened ``O_APPEND``, so concurrent pips never interleave their lines. When the
file outgrows ``MAX_BYTES`` the oldest half is dropped, under an exclusive ``flock`` where the
platform has one. URLs arrive already redacted (``report.redact_url``) and are redacted again
when read, for lines written by older versions; nothing else in a record can hold a credential.

Each damage event carries a fingerprint of the damaged state it met (``entries.damage_fingerprint``)
so that recurrence counts damage, not the pips that happened to meet it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import platformdirs

from pip_cache_guard.diagnose import DAMAGE_KINDS
from pip_cache_guard.ledger import Event
from pip_cache_guard.report import redact_url

if sys.platform != "win32":  # imported here, not in _locked: pip 26.1+ forbids late imports
    import fcntl

MAX_BYTES = 256 * 1024
RECURRENCE_WINDOW = 7 * 24 * 3600  # a week
RECURRENCE_THRESHOLD = 3  # incidents that brought new damage to one cache within the window
LAST_TIMESTAMP = 32_503_680_000  # 3000-01-01 UTC: every platform's gmtime shows up to here
_EVENT_TEXT_FIELDS = ("url", "cache_file", "kind", "reason", "action")
# The history (and its lock) is never written through a symbolic link: a link there was not made
# by the guard, and O_CREAT through a dangling one would create a file wherever it points.
_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)


@dataclass(frozen=True)
class Incident:
    """What one guarded process found: when, where, and each entry it handled."""

    time: float
    cache_dir: str
    pip_version: str | None
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def damaged(self) -> int:
        return sum(1 for event in self.events if event.get("kind") in DAMAGE_KINDS)

    @property
    def damage_fingerprints(self) -> list[str]:
        """One per damage event; "" where the line predates fingerprints (or had no file)."""
        return [
            str(event.get("fingerprint", ""))
            for event in self.events
            if event.get("kind") in DAMAGE_KINDS
        ]


def history_path() -> str:
    """``<user state dir>/pip-cache-guard/history.jsonl`` (``$XDG_STATE_HOME`` on Linux)."""
    return os.path.join(
        platformdirs.user_state_dir("pip-cache-guard", appauthor=False), "history.jsonl"
    )


def append(
    cache_dir: str, pip_version: str | None, events: Sequence[Event], path: str | None = None
) -> Incident:
    """Record one incident and return it."""
    path = path or history_path()
    incident = Incident(time.time(), cache_dir, pip_version, [event._asdict() for event in events])
    line = (json.dumps(asdict(incident), separators=(",", ":")) + "\n").encode("utf-8")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with _locked(path):
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | _NO_FOLLOW, 0o600)
        try:
            os.write(fd, _after_last_line(fd) + line)
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        if size > MAX_BYTES:
            _drop_oldest_half(path)
    return incident


def _after_last_line(fd: int) -> bytes:
    """A newline if the file's last line is unterminated (a write cut short by a full disk, or
    garbage), so that this incident starts a line of its own."""
    size = os.fstat(fd).st_size
    if size == 0:
        return b""
    os.lseek(fd, size - 1, os.SEEK_SET)
    return b"" if os.read(fd, 1) == b"\n" else b"\n"


def read(path: str | None = None) -> list[Incident]:
    """Every well-formed incident, newest first; a damaged line is skipped, not fatal.

    A missing file is no incident; a file that cannot be read raises ``OSError``.
    """
    path = path or history_path()
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            lines = stream.readlines()
    except FileNotFoundError:
        return []
    incidents = [incident for incident in map(_parse, lines) if incident is not None]
    return sorted(incidents, key=lambda incident: incident.time, reverse=True)


def _parse(line: str) -> Incident | None:
    """The incident of one line, or None when the line is not one the guard could have written."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(record, dict):
        return None
    moment, cache_dir = record.get("time"), record.get("cache_dir")
    pip_version = record.get("pip_version")
    if not isinstance(moment, (int, float)) or isinstance(moment, bool):
        return None
    if not (math.isfinite(moment) and 0 <= moment <= LAST_TIMESTAMP):
        return None
    if not isinstance(cache_dir, str) or not (pip_version is None or isinstance(pip_version, str)):
        return None
    raw_events = record.get("events", [])
    if not isinstance(raw_events, list):
        return None
    events = [_event(raw) for raw in raw_events]
    if any(event is None for event in events):
        return None
    return Incident(float(moment), cache_dir, pip_version, [e for e in events if e is not None])


def _event(raw: Any) -> dict[str, Any] | None:
    """A recorded event with the fields and types ``append`` writes, its URL redacted anew."""
    if not isinstance(raw, dict):
        return None
    if not all(isinstance(raw.get(name), str) for name in _EVENT_TEXT_FIELDS):
        return None
    size, fingerprint = raw.get("bytes"), raw.get("fingerprint", "")
    if type(size) is not int or not isinstance(fingerprint, str):  # bool is no size
        return None
    event: dict[str, Any] = {name: raw[name] for name in _EVENT_TEXT_FIELDS}
    event["url"] = redact_url(event["url"])
    event["bytes"] = size
    if fingerprint:
        event["fingerprint"] = fingerprint
    return event


def recent_damage(cache_dir: str, now: float | None = None, path: str | None = None) -> int:
    """How many incidents within ``RECURRENCE_WINDOW`` brought damage new to this cache.

    The same damage met again (by pips that ran at the same moment, or by every run while an entry
    cannot be deleted) has the same fingerprint and counts once, at its first sighting; only an
    entry damaged anew counts again. Events without a fingerprint (older lines) count as new.
    """
    now = time.time() if now is None else now
    seen: set[str] = set()
    count = 0
    for incident in reversed(read(path)):  # oldest first: the first sighting is the one counted
        if incident.cache_dir != cache_dir:
            continue
        fingerprints = incident.damage_fingerprints
        brings_new = any(not mark or mark not in seen for mark in fingerprints)
        seen.update(fingerprints)
        if brings_new and now - incident.time <= RECURRENCE_WINDOW:
            count += 1
    return count


def _drop_oldest_half(path: str) -> None:
    with open(path, "rb") as stream:
        lines = stream.readlines()
    keep = lines[len(lines) // 2 :]
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "wb") as stream:
        stream.writelines(keep)
    os.replace(temporary, path)


@contextlib.contextmanager
def _locked(path: str) -> Iterator[None]:
    """An exclusive lock beside the history file (POSIX); elsewhere appends stay atomic alone."""
    # Windows: written to the documentation, run only in the forge's workflow
    if sys.platform == "win32":
        yield
        return
    fd = os.open(f"{path}.lock", os.O_WRONLY | os.O_CREAT | _NO_FOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
