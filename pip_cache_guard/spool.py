"""What child pips healed, handed to the guarded pip that started them.

pip installs an sdist's build dependencies with a second pip in a subprocess and shows that pip's
output only when it fails: a child's summary would be hidden, and its report overwritten by the
outer pip's. So a guarded pip gives the subprocesses it starts itself (``call_subprocess``,
see ``integrations.pip_subprocess``) ``SPOOL_VARIABLE``, a private directory that does not exist
yet; a guarded pip that finds it set writes its events there (one JSON file, each event whole)
instead of reporting itself, and the pip that handed it out merges them at exit into its own
summary, report and history. Only pip's own subprocesses get it: a program that runs pip as a
subprocess sees pip's summary as always. Stdlib only: imported with ``hook.children``, before pip
26.1+'s import barrier; ``report`` is one of ``hook.LATE_MODULES`` (a healthy run never loads it).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence

from pip_cache_guard.ledger import Event

SPOOL_VARIABLE = "_PIP_CACHE_GUARD_SPOOL"  # private: set by a guarded pip for its children only
_FIELDS = Event._fields


def inherited(environ: Mapping[str, str]) -> str | None:
    """The spool of the guarded pip that started this process, if one did."""
    return environ.get(SPOOL_VARIABLE) or None


def new_path() -> str:
    """A spool for this process's children: a fresh name, created by the first child to use it."""
    name = f"pip-cache-guard-spool-{os.getpid()}-{os.urandom(8).hex()}"
    return os.path.join(tempfile.gettempdir(), name)


def hand_over(path: str, events: Sequence[Event], cache_dir: str | None) -> None:
    """A child's events, written into the spool for its parent (which removes them)."""
    from pip_cache_guard import report  # late: see hook.LATE_MODULES

    os.makedirs(path, mode=0o700, exist_ok=True)
    name = f"{os.getpid()}-{os.urandom(4).hex()}.json"
    document = {"cache_dir": cache_dir, "events": [event._asdict() for event in events]}
    report.write_json_atomically(os.path.join(path, name), document)


def collect(path: str) -> list[tuple[str, Event]]:
    """Every child's events as ``(cache_dir, event)``, oldest first; then the spool is removed.

    A file that cannot be read (a child killed while writing leaves only its ``.tmp``) is skipped.
    """
    try:
        names = [os.path.join(path, name) for name in os.listdir(path) if name.endswith(".json")]
    except OSError:
        return []
    found = []
    for name in sorted(names, key=_mtime):
        try:
            with open(name, encoding="utf-8") as stream:
                document = json.load(stream)
            cache_dir = str(document.get("cache_dir") or "")
            for event in document["events"]:
                found.append((cache_dir, Event(**{k: event[k] for k in _FIELDS if k in event})))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    shutil.rmtree(path, ignore_errors=True)
    return found


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0
