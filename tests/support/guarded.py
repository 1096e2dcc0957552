"""Reading what the guard said in a pip run: its summary block, its JSON report, its history.

Every guarded run of a test gets the environment of ``GuardFiles.env``: ``XDG_STATE_HOME`` in the
test's own directory (the guard appends incidents to a history file there, never in the real home)
and, when asked, ``PIP_CACHE_GUARD_REPORT``.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .reports import REPORTS
from .runner import describe

PREFIX = "pip-cache-guard:"
PIP_WARNING = "Cache entry deserialization failed"
KILL_SWITCH = "PIP_CACHE_GUARD"
REPORT_VARIABLE = "PIP_CACHE_GUARD_REPORT"
DEBUG_SWITCH = "PIP_CACHE_GUARD_DEBUG"


@dataclass(frozen=True)
class GuardFiles:
    """Where one test's guarded runs keep their state (history) and reports."""

    root: Path

    @property
    def state_home(self) -> Path:
        return self.root / "state"

    @property
    def history(self) -> Path:
        """The history file the guard appends to (platformdirs' user state dir on Linux)."""
        return self.state_home / "pip-cache-guard" / "history.jsonl"

    def report(self, name: str) -> Path:
        return self.root / f"report-{name}.json"

    def env(self, report: str | None = None, **more: str | None) -> dict[str, str | None]:
        """``extra_env`` for a guarded run: state dir, and a report file named ``report``."""
        env: dict[str, str | None] = {"XDG_STATE_HOME": str(self.state_home)}
        if report is not None:
            env[REPORT_VARIABLE] = str(self.report(report))
        env.update(more)
        return env

    def history_lines(self) -> list[dict[str, Any]]:
        if not self.history.is_file():
            return []
        return [json.loads(line) for line in self.history.read_text().splitlines() if line]


def summary_block(stderr: str) -> list[str]:
    """The guard's exit block: its ``pip-cache-guard:`` line and the indented lines after it.

    Fails (AssertionError) unless exactly one line of ``stderr`` starts with the prefix.
    """
    lines = stderr.splitlines()
    starts = [n for n, line in enumerate(lines) if line.startswith(PREFIX)]
    assert len(starts) == 1, f"expected one {PREFIX!r} line in stderr:\n{stderr}"
    block = [lines[starts[0]]]
    for line in lines[starts[0] + 1 :]:
        if not line.startswith("  "):
            break
        block.append(line)
    return block


def read_report(path: Path) -> dict[str, Any]:
    """The JSON report, checked against the top level of schema 1."""
    REPORTS.check(path)  # and against its JSON Schema
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["schema"] == 1, data
    assert set(data) == {
        "schema", "tool_version", "pip_version", "cache_dir", "events", "deleted", "bytes_freed",
    }, data  # fmt: skip
    for event in data["events"]:
        assert set(event) - {"digest"} == {
            "url", "cache_dir", "cache_file", "kind", "reason", "action", "bytes",
        }, event  # fmt: skip
        assert "digest" not in event or event["kind"] in ("bad-body", "bad-page", "index-mismatch")
        assert event["action"] in (
            "deleted", "kept", "delete-failed", "already-deleted", "refetched", "rebuilt",
        ), event  # fmt: skip
    assert data["deleted"] == sum(1 for e in data["events"] if e["action"] == "deleted"), data
    freed = sum(e["bytes"] for e in data["events"] if e["action"] == "deleted")
    assert data["bytes_freed"] == freed, data
    return data


def outcomes(report: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """``{url: (kind, action)}`` of a report; fails if an entry has more than one event."""
    urls = [event["url"] for event in report["events"]]
    assert len(urls) == len(set(urls)), f"duplicate events: {report['events']}"
    return {event["url"]: (event["kind"], event["action"]) for event in report["events"]}


def assert_clean_exit(result: subprocess.CompletedProcess[str]) -> None:
    """Exit 0, no traceback, and the guard's summary (if any) only on stderr.

    (stdout may name the package itself: ``pip list`` does.)
    """
    assert result.returncode == 0, describe(result)
    assert "Traceback" not in result.stderr, describe(result)
    assert PREFIX not in result.stdout, describe(result)
