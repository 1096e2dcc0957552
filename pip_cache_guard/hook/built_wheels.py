"""Wheels pip built and cached: one that cannot be read is deleted for pip to build again.

Also the ``origin.json`` beside one, for the pips that stop on a damaged one; at exit,
``settle_rebuilds`` tells whether pip's build really put a readable wheel back.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Callable

from pip_cache_guard.diagnose import wheel_problem
from pip_cache_guard.hook import STATE, keep, never_raises
from pip_cache_guard.ledger import Event

# What pip (22.2+) writes beside the wheels it built: the source they were built from.
ORIGIN_FILE = "origin.json"


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


@never_raises(False)
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
    event = keep(
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
    keep(wheels_dir, url, origin_path, "bad-wheel", reason, deletion.action,
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


@never_raises(None)
def settle_rebuilds() -> None:
    """At exit: a deleted built wheel is ``rebuilt`` if pip's build put a readable wheel where it
    was; otherwise it stays ``deleted`` (the build failed, or pip never needed it)."""
    for rebuild in STATE.rebuilds:
        new = _wheels_in(rebuild.directory) - rebuild.before
        if any(wheel_problem(os.path.join(rebuild.directory, name)) is None for name, *_ in new):
            reason = f"{rebuild.event.reason}; pip built it again from the sdist in this run"
            event = rebuild.event._replace(action="rebuilt", reason=reason)
            STATE.ledger.settle(rebuild.cache_dir, rebuild.key, event)
