"""At exit: settle what waited for the end of the run, then report, remember and sum up.

The JSON report (if asked), the history (recurrence advice) and the one summary on stderr.
"""

from __future__ import annotations

import os
import sys

from pip_cache_guard._import_hook import PIP_RUN, import_reaching
from pip_cache_guard.diagnose import DAMAGE_KINDS
from pip_cache_guard.hook import STATE, never_raises
from pip_cache_guard.hook.built_wheels import settle_rebuilds
from pip_cache_guard.hook.children import hand_over, join_spool, merge_children
from pip_cache_guard.ledger import Event
from pip_cache_guard.switches import REPORT_VARIABLE


@never_raises(None)
def at_exit() -> None:
    """Write the JSON report (if asked), remember the incident, print the summary.

    A child pip (one a guarded pip started: ``join_spool``) hands its events to the pip that
    started it instead; that pip first merges what its children handed over. Each step has its
    own boundary too, so that a failing history never costs the summary."""
    if not STATE.reports_at_exit:
        return
    settle_rebuilds()
    join_spool()
    if STATE.spool is not None and not STATE.spool_owner:
        if not STATE.ledger.events() or hand_over(STATE.spool):
            return  # a child pip: the pip that started it reports (if the hand-over failed: we)
    elif STATE.spool is not None:
        merge_children(STATE.spool)
    events = STATE.ledger.events()
    cache_dir = STATE.ledger.cache_dir
    _write_report(events, cache_dir)
    if not events:
        return
    advice = _remember(events, cache_dir or "")
    _print_summary(events, cache_dir, advice or [])


@never_raises(None)
def _write_report(events: list[Event], cache_dir: str | None) -> None:
    report_path = os.environ.get(REPORT_VARIABLE)
    if report_path:
        from pip_cache_guard import report  # late: see LATE_MODULES

        data = report.document(events, cache_dir, PIP_RUN.pip_version())
        report.write_json_atomically(report_path, data)


@never_raises(None)
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


@never_raises(None)
def _print_summary(events: list[Event], cache_dir: str | None, advice: list[str]) -> None:
    from pip_cache_guard import report  # late: see LATE_MODULES

    level = PIP_RUN.verbosity if PIP_RUN.verbosity is not None else 0
    if level > -2:
        sys.stderr.write(report.summary(events, cache_dir, level, advice))
        sys.stderr.flush()
