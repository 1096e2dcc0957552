"""A small, bounded record of past incidents, so that damage that keeps coming back is noticed.

One JSON line per guarded process that found something (an incident), appended with a single
``write`` to a file opened ``O_APPEND``, so concurrent pips never interleave their lines. When the
file outgrows ``MAX_BYTES`` the oldest half is dropped, under an exclusive ``flock`` where the
platform has one. URLs arrive already redacted (``report.redact_url``); nothing else in a record
can hold a credential.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import platformdirs

from pip_cache_guard.diagnose import DAMAGE_KINDS
from pip_cache_guard.ledger import Event

MAX_BYTES = 256 * 1024
RECURRENCE_WINDOW = 7 * 24 * 3600  # a week
RECURRENCE_THRESHOLD = 3  # incidents of damage in one cache within the window


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
    incident = Incident(time.time(), cache_dir, pip_version, [asdict(event) for event in events])
    line = (json.dumps(asdict(incident), separators=(",", ":")) + "\n").encode("utf-8")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with _locked(path):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        if size > MAX_BYTES:
            _drop_oldest_half(path)
    return incident


def read(path: str | None = None) -> list[Incident]:
    """Every readable incident, newest first; a damaged line is skipped, not fatal."""
    path = path or history_path()
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            lines = stream.readlines()
    except FileNotFoundError:
        return []
    incidents = []
    for line in lines:
        try:
            record = json.loads(line)
            incidents.append(
                Incident(
                    float(record["time"]),
                    str(record["cache_dir"]),
                    record.get("pip_version"),
                    list(record.get("events", [])),
                )
            )
        except (ValueError, KeyError, TypeError):
            continue
    return sorted(incidents, key=lambda incident: incident.time, reverse=True)


def recent_damage(cache_dir: str, now: float | None = None, path: str | None = None) -> int:
    """How many incidents with damage this cache had within ``RECURRENCE_WINDOW``."""
    now = time.time() if now is None else now
    return sum(
        1
        for incident in read(path)
        if incident.cache_dir == cache_dir
        and incident.damaged
        and now - incident.time <= RECURRENCE_WINDOW
    )


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
    try:
        import fcntl
    except ImportError:
        yield
        return
    fd = os.open(f"{path}.lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
