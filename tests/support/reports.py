"""Every JSON report a test's pip wrote, checked against the report's JSON Schema.

The schema (``docs/schemas/report-1.schema.json``) is a promise to scripts; only reports written
by real pips prove the code keeps it. So every report a test asks for (``hermetic_env`` sees
``PIP_CACHE_GUARD_REPORT`` go by) is validated right after the run that wrote it, when a test
reads it, and, for processes started otherwise, at the end of the session; the kinds and actions
met on the way are kept, so that a whole run can show that each one the schema lists was met in a
real report at least once.
"""

from __future__ import annotations

import functools
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "schemas" / "report-1.schema.json"
REPORT_VARIABLE = "PIP_CACHE_GUARD_REPORT"
# Met only when two pips race for one damaged entry and the slower one still finds it: validated
# when a run meets it, never required of a run (test_fingerprint.py proves it in-process).
RACE_ONLY_ACTIONS = frozenset({"already-deleted"})


@functools.cache
def load_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return schema


def schema_enum(field: str) -> frozenset[str]:
    """The values the schema allows for the event field ``field`` (``kind``, ``action``)."""
    return frozenset(load_schema()["$defs"]["event"]["properties"][field]["enum"])


def problems(report: Any) -> list[str]:
    """What in ``report`` breaks the schema, or the totals the schema cannot express."""
    validator = Draft202012Validator(load_schema())
    found = [
        f"{'/'.join(str(part) for part in error.absolute_path) or '(top)'}: {error.message}"
        for error in validator.iter_errors(report)
    ]
    if not found:
        deleted = [event for event in report["events"] if event["action"] == "deleted"]
        if report["deleted"] != len(deleted):
            found.append(f"deleted: {report['deleted']} but {len(deleted)} events were deleted")
        if report["bytes_freed"] != sum(event["bytes"] for event in deleted):
            found.append("bytes_freed: not the sum of bytes of the deleted events")
    return found


class ReportChecks:
    """The reports of this session: where they are, which were checked, what they held."""

    def __init__(self) -> None:
        self.watched: set[str] = set()
        self.checked: set[tuple[str, int, int, int]] = set()
        self.kinds: set[str] = set()
        self.actions: set[str] = set()

    def watch(self, env: Mapping[str, str]) -> str | None:
        """Note the report a process started with ``env`` may write; its path, if any."""
        path = env.get(REPORT_VARIABLE)
        if path:
            self.watched.add(path)
        return path

    def check(self, path: str | os.PathLike[str] | None) -> None:
        """Validate the report at ``path`` if there is one not checked yet (AssertionError)."""
        if path is None:
            return
        try:
            status = os.stat(path)
        except OSError:
            return  # not written (kill switch, a child pip, a test that expects none)
        if not stat.S_ISREG(status.st_mode):
            return
        seen = (os.fspath(path), status.st_ino, status.st_mtime_ns, status.st_size)
        if seen in self.checked:
            return
        text = Path(path).read_text(encoding="utf-8")
        try:
            report = json.loads(text)
        except ValueError as exc:
            raise AssertionError(f"{path} is not JSON ({exc}):\n{text}") from None
        found = problems(report)
        assert not found, f"{path} breaks {SCHEMA_PATH.name}:\n" + "\n".join(found) + f"\n{text}"
        self.checked.add(seen)
        self.kinds.update(event["kind"] for event in report["events"])
        self.actions.update(event["action"] for event in report["events"])

    def sweep(self, within: Path) -> None:
        """Check what processes started outside ``run_python`` left (concurrent pips...) in the
        session's directory ``within`` (a unit test may name a path of no test's own)."""
        for path in sorted(self.watched):
            if Path(path).resolve().is_relative_to(within.resolve()):
                self.check(path)

    def unmet(self) -> dict[str, list[str]]:
        """The kinds and (required) actions of the schema no report of this session held."""
        return {
            "kind": sorted(schema_enum("kind") - self.kinds),
            "action": sorted(schema_enum("action") - RACE_ONLY_ACTIONS - self.actions),
        }


REPORTS = ReportChecks()
