"""What the guard tells people and scripts: the exit summary, the JSON report, URL redaction.

Index URLs often carry tokens (``https://user:token@host/...``, signed query strings), so every URL
passes through ``redact_url`` before it is printed or stored anywhere.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pip_cache_guard import __version__
from pip_cache_guard.diagnose import DAMAGE_KINDS
from pip_cache_guard.ledger import Event

SCHEMA_VERSION = 1
PREFIX = "pip-cache-guard:"
FILES_SHOWN = 5
_USERINFO = re.compile(r"//[^/?#@]*@")
_PATH_PARAMETERS = re.compile(r";[^/?#]*")
REDACTED = "***"
LEFT_IN_PLACE = ("kept", "delete-failed")  # actions after which the damaged file is still there


def redact_url(url: str) -> str:
    """Hide whatever may be a credential: the user-info part, the whole query string (a signed or
    tokenised link may put its secret in any field, with or without ``=``), path parameters
    (``;jsessionid=...``) and the fragment. Scheme, host and path stay: they name the file."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL we can parse: cut by hand, still leaking nothing of the above
        base = re.split(r"[?#]", url, maxsplit=1)[0]
        return _PATH_PARAMETERS.sub(f";{REDACTED}", _USERINFO.sub(f"//{REDACTED}@", base))
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@" + netloc.rpartition("@")[2]
    path = _PATH_PARAMETERS.sub(f";{REDACTED}", parts.path)
    query = REDACTED if parts.query else ""
    return urlunsplit((parts.scheme, netloc, path, query, ""))


def url_file_name(url: str) -> str:
    """The last path segment of a (redacted) URL: the wheel's name, or ``name/`` for index pages."""
    try:
        path = urlsplit(url).path
    except ValueError:  # e.g. an unbalanced "[" in the host: the URL is all we can show
        return url
    name = path.rstrip("/").rpartition("/")[2]
    if not name:
        return url
    return name + "/" if path.endswith("/") else name


def format_size(size: int) -> str:
    """Sizes the way pip prints them (decimal units)."""
    if size < 1000:
        return f"{size} bytes"
    units = ("kB", "MB", "GB", "TB")
    value, unit = size / 1000, 0
    while value >= 1000 and unit < len(units) - 1:
        value, unit = value / 1000, unit + 1
    return f"{value:.1f} {units[unit]}"


def plural(count: int, singular: str, many: str) -> str:
    """``count`` and the noun that goes with it: "1 entry", "2 entries"."""
    return f"{count} {singular if count == 1 else many}"


def by_cache_dir(events: Iterable[Event], default: str) -> dict[str, list[Event]]:
    """The events grouped by the cache they are in (``default`` where one names none), in the
    order the caches were first met."""
    groups: dict[str, list[Event]] = {}
    for event in events:
        groups.setdefault(event.cache_dir or default, []).append(event)
    return groups


def summary(
    events: Sequence[Event],
    cache_dir: str | None,
    level: int = 0,
    extra_advice: Iterable[str] = (),
) -> str:
    """The exit summary: first line starts with ``pip-cache-guard:``; "" when nothing happened.

    ``level`` is pip's verbosity: -1 keeps only the first line, 1 and more add per-entry detail.
    Entries are listed under the cache they are in (``cache_dir`` for events that name none).
    """
    if not events:
        return ""
    damaged = [event for event in events if event.kind in DAMAGE_KINDS]
    skipped = [event for event in events if event.kind not in DAMAGE_KINDS]
    lines = [f"{PREFIX} {_headline(damaged, skipped)}"]
    if level < 0:
        return lines[0] + "\n"
    shown, room = 0, len(events) if level > 0 else FILES_SHOWN
    for where, group in by_cache_dir(events, cache_dir or "").items():
        if shown == room:
            break
        if where:
            lines.append(f"  cache: {where}")
        for event in group[: room - shown]:
            checked = f" (checked against {event.digest})" if event.digest else ""
            lines.append(f"  - {url_file_name(event.url)}: {event.kind}, {event.action}{checked}")
            if level > 0:
                lines.append(f"      url: {event.url}")
                lines.append(f"      file: {event.cache_file} ({format_size(event.bytes)})")
                lines.append(f"      why: {event.reason}")
            shown += 1
    if len(events) > shown:
        lines.append(f"  - and {len(events) - shown} more")
    lines.extend(f"  {advice}" for advice in _advice(damaged, skipped))
    lines.extend(f"  {advice}" for advice in extra_advice)
    return "\n".join(lines) + "\n"


# Actions that put a good copy in place of a damaged entry in the same run, in the headline's words.
_REPLACED = {"refetched": "fetched again", "rebuilt": "built again"}
# Kinds that are reported but are not damage of the cache, each with its headline and advice.
_NOT_DAMAGE = {
    "vary-mismatch": (
        ("valid cache entry", "valid cache entries"),
        "skipped by pip for a Vary mismatch (not damaged, kept)",
        "A Vary mismatch is not damage: it happens when interpreters with different HTTP "
        "libraries share one cache and overwrite each other's entries.",
    ),
    "index-mismatch": (
        ("file", "files"),
        "failed again as fetched afresh from the index (the cache was not the cause)",
        "A file that fails again when fetched afresh is not cache damage: the index serves a "
        "file other than its hash says (or a broken one), or the expected hash is out of date.",
    ),
}


def _headline(damaged: Sequence[Event], skipped: Sequence[Event]) -> str:
    parts = []
    if damaged:
        kinds = Counter(event.kind for event in damaged)
        actions = Counter(event.action for event in damaged)
        freed = sum(event.bytes for event in damaged if event.action == "deleted")
        kind_text = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
        done = [
            f"{actions[action]} {words}" for action, words in _REPLACED.items() if actions[action]
        ]
        if actions["deleted"] or not done:
            done.insert(0, f"{actions['deleted']} deleted ({format_size(freed)} freed)")
        if actions["delete-failed"]:
            done.append(f"{actions['delete-failed']} could not be deleted")
        if actions["kept"]:
            done.append(f"{actions['kept']} left alone")
        if actions["already-deleted"]:
            done.append(f"{actions['already-deleted']} already deleted by another process")
        entries = plural(len(damaged), "damaged cache entry", "damaged cache entries")
        parts.append(f"{entries} ({kind_text}): {', '.join(done)}")
    for kind, count in Counter(event.kind for event in skipped).items():
        (singular, many), what, _ = _NOT_DAMAGE.get(kind, _NOT_DAMAGE["vary-mismatch"])
        parts.append(f"{plural(count, singular, many)} {what}")
    return "; ".join(parts)


# What became of an entry the guard took out, by action, as the advice says it in one sentence.
_WHAT_FOLLOWED = {
    "deleted": "deleted entries are fetched afresh",
    "refetched": "entries fetched again were replaced by pip's fresh download in this run",
    "rebuilt": "cached wheels built again were replaced by pip's fresh build in this run",
}


def _advice(damaged: Sequence[Event], skipped: Sequence[Event]) -> list[str]:
    advice = []
    actions = {event.action for event in damaged}
    followed = [clause for action, clause in _WHAT_FOLLOWED.items() if action in actions]
    if followed:
        said = "; ".join(followed)
        advice.append(f"{said[0].upper()}{said[1:]}; nothing else in the cache was touched.")
    left = [event for event in damaged if event.action in LEFT_IN_PLACE]
    for_its_writer = [e for e in left if e.kind == "missing-body" and e.action == "kept"]
    if for_its_writer:
        advice.append(
            "An entry without its body that was written moments ago is left to its writer "
            "(it was fetched afresh all the same)."
        )
    if len(left) > len(for_its_writer):
        advice.append(
            "Some damaged files were left in place (see above): if the cache is read-only or "
            "shared, remove them by hand or run `pip cache purge`."
        )
    for kind in dict.fromkeys(event.kind for event in skipped):
        advice.append(_NOT_DAMAGE.get(kind, _NOT_DAMAGE["vary-mismatch"])[2])
    return advice


def document(
    events: Sequence[Event], cache_dir: str | None, pip_version: str | None
) -> dict[str, Any]:
    """The JSON report, schema 1 (docs/report.md; docs/schemas/report-1.schema.json checks it).
    ``cache_dir`` is the HTTP cache this process used; each event names the cache it is in (a
    child pip's may be another)."""
    return {
        "schema": SCHEMA_VERSION,
        "tool_version": __version__,
        "pip_version": pip_version,
        "cache_dir": cache_dir,
        "events": [
            {
                "url": event.url,
                "cache_dir": event.cache_dir or None,
                "cache_file": event.cache_file,
                "kind": event.kind,
                "reason": event.reason,
                "action": event.action,
                "bytes": event.bytes,
                **({"digest": event.digest} if event.digest else {}),
            }
            for event in events
        ],
        "deleted": sum(1 for event in events if event.action == "deleted"),
        "bytes_freed": sum(event.bytes for event in events if event.action == "deleted"),
    }


def write_json_atomically(path: str, data: Mapping[str, Any]) -> None:
    """Write ``data`` so that readers see the old file or the whole new one, never a part."""
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory
    )
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(data, stream, indent=2)
            stream.write("\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
