"""How the CLI's results look: one JSON and one text form per command, nothing else.

JSON is for scripts (stdout); text is for people (stderr). Paths in text are shown relative to the
cache directory; JSON keeps them absolute.
"""

from __future__ import annotations

import datetime
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from pip_cache_guard import __version__
from pip_cache_guard.report import format_size, plural, url_file_name

if TYPE_CHECKING:  # `verify --json` should not pay for importing doctor's and history's needs
    from pip_cache_guard.doctor import Health
    from pip_cache_guard.history import Incident
    from pip_cache_guard.locate import ToolCache
    from pip_cache_guard.verify import Finding, Scan

SCHEMA_VERSION = 1
# What fixes the cache ``verify`` chose by default; another cache needs the options that chose it.
FIX_COMMAND = "pip-cache-guard verify --fix"
PIP_CONTROLLER = "pip._vendor.cachecontrol.controller"
FINDINGS_SHOWN = 20


def verify_json(scan: Scan) -> dict[str, Any]:
    document = {
        "schema": SCHEMA_VERSION,
        "tool_version": __version__,
        "cache_dir": scan.cache_dir,
        "entries": scan.entries,
        "ok_entries": scan.ok_entries,
        "wheels": scan.wheels,
        "bytes_total": scan.bytes_total,
        "problems": [asdict(finding) for finding in scan.problems],
        "unrecognised": [asdict(finding) for finding in scan.unrecognised],
        "legacy_http": asdict(scan.legacy) if scan.legacy else None,
        "errors": scan.errors,
        # The lists above hold the first FINDINGS_LISTED of each; these count them all.
        "problems_found": scan.problems_found,
        "unrecognised_found": scan.unrecognised_found,
        "errors_found": scan.errors_found,
        "fixed": scan.fixed,
        "remaining": scan.remaining_found,
        "bytes_freed": scan.bytes_freed,
        "seconds": round(scan.seconds, 3),
        # A CacheControl directory's reader is unknown: whose reading judged it (null: pip's cache).
        "judged_as": scan.judged_as,
    }
    if scan.checked_digests:  # --digests: bodies by what hashing them showed
        from pip_cache_guard.body_check import OUTCOMES

        document["digests"] = {outcome: scan.digests[outcome] for outcome in OUTCOMES}
    return document


def verify_text(scan: Scan, fix_command: str = FIX_COMMAND) -> str:
    """``fix_command``: the command line, run as printed, that fixes this very cache."""
    lines = [f"pip-cache-guard verify: {scan.cache_dir}"]
    lines.append(
        f"  checked {scan.entries} HTTP cache entries and {scan.wheels} cached wheels "
        f"({format_size(scan.bytes_total)}) in {scan.seconds:.2f} s"
    )
    if scan.judged_as is not None:
        lines.append(
            f"  judged as {scan.judged_as} reads it (the one installed here: the program that "
            "reads this directory is not known)"
        )
    if scan.checked_digests:
        lines.append(_digests_line(scan.digests))
    if scan.problems_found:
        kind_text = ", ".join(f"{count} {kind}" for kind, count in sorted(scan.kinds.items()))
        lines.append(f"  damaged: {scan.problems_found} ({kind_text})")
        lines.extend(
            _finding_lines(
                scan.cache_dir, scan.problems, scan.problems_found, with_action=scan.fixed
            )
        )
    else:
        lines.append(f"  damaged: none; {scan.ok_entries} entries are fine")
    if scan.unrecognised_found:
        lines.append(f"  not recognised (left alone): {scan.unrecognised_found}")
        lines.extend(
            _finding_lines(
                scan.cache_dir, scan.unrecognised, scan.unrecognised_found, with_action=False
            )
        )
    if scan.legacy and scan.legacy.stale and scan.legacy.bytes:
        lines.append(
            f"  stale: {scan.legacy.path} holds {scan.legacy.entries} entries "
            f"({format_size(scan.legacy.bytes)}) that pip 23.3 and later never read; "
            "reclaimable by deleting that directory"
        )
    lines.extend(f"  error: {error}" for error in scan.errors)
    if scan.errors_found > len(scan.errors):
        lines.append(f"  and {scan.errors_found - len(scan.errors)} more errors")
    if scan.fixed and scan.problems_found:
        by_others = scan.actions["already-deleted"]
        lines.append(
            f"  fixed: {scan.actions['deleted']} deleted ({format_size(scan.bytes_freed)} freed), "
            + (f"{by_others} already deleted by another process, " if by_others else "")
            + f"{scan.remaining_found} remain"
        )
    elif scan.problems_found:
        lines.append(f"  run `{fix_command}` to delete exactly these files")
    return "\n".join(lines) + "\n"


def _digests_line(counts: Counter[str]) -> str:
    unverifiable = counts["unverifiable"]
    why = " (no digest: stored by a pip without the guard, from a server that sends none)"
    return (
        f"  digests: {plural(counts['verified'] + counts['mismatched'], 'body', 'bodies')} "
        f"hashed, {counts['verified']} match, {counts['mismatched']} do not; "
        f"{unverifiable} unverifiable" + (why if unverifiable else "")
    )


def verify_all_json(scans: Sequence[tuple[ToolCache, Scan]]) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "tool_version": __version__,
        "caches": [
            {"tool": cache.tool, "source": cache.source, **verify_json(scan)}
            for cache, scan in scans
        ],
        "remaining": sum(scan.remaining_found for _cache, scan in scans),
    }


def verify_all_text(scans: Sequence[tuple[ToolCache, Scan]], fix_command: str = FIX_COMMAND) -> str:
    if not scans:
        tools = "pip, pip-tools, pipenv, Poetry or pip-audit"
        return f"pip-cache-guard verify --all: no cache of {tools} found\n"
    sections = []
    for cache, scan in scans:
        text = verify_text(scan, fix_command)
        sections.append(text.replace("pip-cache-guard verify:", f"[{cache.tool}]", 1))
    header = f"pip-cache-guard verify --all: {len(scans)} caches\n"
    return header + "".join(sections)


def _finding_lines(
    root: str, findings: Sequence[Finding], found: int, with_action: bool
) -> list[str]:
    """The first few of ``findings`` (``found`` in all, listed or not)."""
    lines = []
    for finding in findings[:FINDINGS_SHOWN]:
        action = f" [{finding.action}]" if with_action else ""
        path = os.path.relpath(finding.path, root)
        lines.append(f"    {finding.kind:<14} {path}: {finding.reason}{action}")
    if found > FINDINGS_SHOWN:
        listed = "them all" if found == len(findings) else f"the first {len(findings)}"
        lines.append(f"    and {found - FINDINGS_SHOWN} more (--json lists {listed})")
    return lines


def doctor_json(health: Health) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "tool_version": __version__,
        "python": health.python,
        "hook_installed": health.hook_installed,
        "hook_files": health.hook_files,
        "hook_active": health.hook_active,
        "inactive_reason": health.inactive_reason,
        "pip_version": health.pip_version,
        "patch_point": health.patch_point,
        "patch_points": health.patch_points,
        "tool_caches": [
            {"tool": cache.tool, "path": cache.path, "source": cache.source, "exists": exists}
            for cache, exists in health.tool_caches
        ],
        "healing_points": health.healing_points,
        "cache_dir": health.cache.root,
        "cache_source": health.cache.source,
        "cache_disabled": health.cache.disabled,
        "cache_exists": health.cache_exists,
        "cache_bytes": health.cache_bytes,
        "free_bytes": health.free_bytes,
        "low_disk": health.low_disk,
        "history_file": health.history_file,
        "history_error": health.history_error,
        "recent_incidents": [incident_json(incident) for incident in health.recent_incidents],
    }


def doctor_text(health: Health) -> str:
    mark = {True: "ok", False: "!!"}
    hook_where = ", ".join(health.hook_files) if health.hook_files else "not found"
    active = "yes" if health.hook_active else f"no: {health.inactive_reason}"
    free = format_size(health.free_bytes) if health.free_bytes is not None else "unknown"
    disabled = (
        f" (pip's cache is disabled by no-cache-dir in {health.cache.disabled_by})"
        if health.cache.disabled
        else ""
    )
    lines = [
        f"pip-cache-guard doctor ({__version__}) for {health.python}",
        f"  [{mark[health.hook_installed]}] hook installed: {hook_where}",
        f"  [{mark[health.hook_active]}] hook active: {active}",
        f"       pip: {health.pip_version or 'not installed'}; patch point: "
        f"{health.patch_point or 'none'}",
        *(f"       also {module}: {point}" for module, point in health.healing_points.items()),
        f"       cache: {health.cache.root} (from {health.cache.source}){disabled}, "
        + (format_size(health.cache_bytes) if health.cache_exists else "does not exist yet"),
        f"  [{mark[not health.low_disk]}] free space there: {free}"
        + (": low; a full disk is what truncates cache files" if health.low_disk else ""),
        f"       history: {health.history_file}"
        if health.history_error is None
        else f"  [!!] history: {health.history_file} {health.history_error}",
    ]
    if len(health.patch_points) > 1 or (
        health.patch_points and PIP_CONTROLLER not in health.patch_points
    ):
        lines.append("  controllers patched here:")
        lines.extend(f"    {name}: {point}" for name, point in health.patch_points.items())
    lines.append("  caches of the tools the guard knows (`verify --all` checks those present):")
    lines.extend(
        f"    {cache.tool:<16} {cache.path} ({cache.source})" + ("" if exists else ", not present")
        for cache, exists in health.tool_caches
    )
    if health.recent_incidents:
        lines.append("  recent incidents:")
        lines.extend(f"    {incident_line(incident)}" for incident in health.recent_incidents)
    else:
        lines.append("  recent incidents: none")
    return "\n".join(lines) + "\n"


def incident_json(incident: Incident) -> dict[str, Any]:
    return {
        "time": _iso(incident.time),
        "cache_dir": incident.cache_dir,
        "pip_version": incident.pip_version,
        "events": incident.events,
    }


def incident_line(incident: Incident) -> str:
    kinds = Counter(str(event.get("kind")) for event in incident.events)
    kind_text = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
    names = ", ".join(url_file_name(str(event.get("url", ""))) for event in incident.events[:3])
    more = f" and {len(incident.events) - 3} more" if len(incident.events) > 3 else ""
    pip = f"pip {incident.pip_version}" if incident.pip_version else "cachecontrol"
    return f"{_iso(incident.time)}  {pip}  {incident.cache_dir}: {kind_text} ({names}{more})"


def history_json(incidents: Sequence[Incident]) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "incidents": [incident_json(incident) for incident in incidents],
    }


def history_text(incidents: Sequence[Incident], path: str) -> str:
    if not incidents:
        return f"pip-cache-guard history: no incidents recorded ({path})\n"
    count = plural(len(incidents), "incident", "incidents")
    lines = [f"pip-cache-guard history: {count}, newest first ({path})"]
    lines.extend(f"  {incident_line(incident)}" for incident in incidents)
    return "\n".join(lines) + "\n"


def _iso(timestamp: float) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp, tz=datetime.timezone.utc)
    return moment.isoformat(timespec="seconds")
