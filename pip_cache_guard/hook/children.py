"""Child pips (those pip starts itself, as the one that installs an sdist's build dependencies):
one spool, so that the user sees one summary, one report and one history line.

The outermost guarded pip owns the spool (``spool``) and merges what its children handed over; a
child pip hands its events over at exit instead of reporting them itself.
"""

from __future__ import annotations

import os

from pip_cache_guard import spool
from pip_cache_guard.hook import STATE, never_raises


@never_raises(None)
def join_spool() -> None:
    """If a guarded pip started this process, hand events to it at exit instead of reporting."""
    if STATE.spool is None:
        STATE.spool = spool.inherited(os.environ)


@never_raises(None)
def spool_for_children() -> str | None:
    """The spool for a subprocess pip starts: the inherited one, or this process's own."""
    join_spool()
    if STATE.spool is None:
        STATE.spool, STATE.spool_owner = spool.new_path(), True
    return STATE.spool


@never_raises(False)
def hand_over(path: str) -> bool:
    """A child pip's events to the pip that started it: False if they could not be handed over
    (then this pip reports them itself)."""
    spool.hand_over(path, STATE.ledger.events(), STATE.ledger.cache_dir)
    return True


@never_raises(None)
def merge_children(path: str) -> None:
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
