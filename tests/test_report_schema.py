"""The report's JSON Schema (docs/schemas/report-1.schema.json) says what the code writes.

The schema lists kinds and actions as closed enums: these tests hold them equal to the code's own
lists, check ``report.document`` and the example in docs/report.md against it, and prove the
check that every real report of the suite goes through (``support.reports``) fails on a broken
one. The last test runs after every other: a whole run must have met each kind and action in a
report a real pip wrote.
"""

from __future__ import annotations

import copy
import itertools
import json
import sys
import typing
from pathlib import Path
from typing import Any

import pytest

from pip_cache_guard import diagnose, entries, report
from pip_cache_guard.hook import rejected_files
from pip_cache_guard.ledger import Event

from support.reports import RACE_ONLY_ACTIONS, REPORTS, ReportChecks, problems, schema_enum

REPO_ROOT = Path(__file__).resolve().parent.parent
# Kinds the hook reports that are not damage (diagnose's verdicts and the refetch's outcome).
NOT_DAMAGE = {"vary-mismatch", "index-mismatch"}
# Actions of the hook's own: a rejected file fetched again, a built wheel built again.
HOOK_ACTIONS = {"refetched", "rebuilt"}
# ``restored`` is only ``verify --fix``'s (a claim a killed process left, put back).
VERIFY_ONLY_ACTIONS = {"restored"}


def _event(kind: str, action: str, size: int = 1234) -> Event:
    url = "https://***@pkgs.example/files/x-1.0-py3-none-any.whl"
    return Event(url, "/cache/http-v2/a/b/c/d/e/abcde", kind, "why", action, size, "fingerprint")


def test_the_schemas_kinds_are_the_kinds_the_code_writes() -> None:
    verdicts = set(typing.get_args(diagnose.Kind)) - {"ok"}
    refetched = {kind for kind, _action, _why in rejected_files._REFETCH_EVENTS.values()}
    assert verdicts | refetched <= schema_enum("kind")
    assert schema_enum("kind") == diagnose.DAMAGE_KINDS | NOT_DAMAGE


def test_the_schemas_actions_are_the_actions_the_hook_writes() -> None:
    deletions = set(typing.get_args(entries.Action)) - VERIFY_ONLY_ACTIONS
    assert schema_enum("action") == deletions | HOOK_ACTIONS
    assert set(report.LEFT_IN_PLACE) | RACE_ONLY_ACTIONS <= schema_enum("action")


def test_a_document_of_every_kind_and_action_is_valid() -> None:
    pairs = itertools.product(sorted(schema_enum("kind")), sorted(schema_enum("action")))
    events = [_event(kind, action) for kind, action in pairs]
    for cache_dir, pip_version in (("/cache/http-v2", "26.3"), (None, None)):
        document = json.loads(json.dumps(report.document(events, cache_dir, pip_version)))
        assert problems(document) == []
    assert problems(report.document([], None, None)) == []


def test_the_docs_example_report_is_valid() -> None:
    page = (REPO_ROOT / "docs" / "report.md").read_text(encoding="utf-8")
    after = page.split("The report, schema 1", 1)[1]
    example = after.split("```json\n", 1)[1].split("```", 1)[0]
    assert problems(json.loads(example)) == []


def _broken(change: str) -> dict[str, Any]:
    document = report.document([_event("corrupt", "deleted")], "/cache/http-v2", "26.3")
    broken = copy.deepcopy(document)
    event = broken["events"][0]
    if change == "unknown action":
        event["action"] = "vanished"
    elif change == "unknown kind":
        event["kind"] = "cosmic-ray"
    elif change == "undocumented field":
        event["extra"] = 1
    elif change == "missing field":
        del broken["cache_dir"]
    elif change == "bytes as text":
        event["bytes"] = "1234"
    elif change == "totals":
        broken["bytes_freed"] += 1
    elif change == "schema 2":
        broken["schema"] = 2
    return broken


@pytest.mark.parametrize(
    "change",
    [
        "unknown action",
        "unknown kind",
        "undocumented field",
        "missing field",
        "bytes as text",
        "totals",
        "schema 2",
    ],
)
def test_a_broken_report_fails_the_check_every_real_report_goes_through(
    change: str, tmp_path: Path
) -> None:
    path = tmp_path / "report.json"
    path.write_text(json.dumps(_broken(change)), encoding="utf-8")
    checks = ReportChecks()
    with pytest.raises(AssertionError, match=r"breaks report-1\.schema\.json"):
        checks.check(path)
    assert checks.kinds == set()


def test_every_kind_and_action_was_met_in_a_real_report(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Run last (conftest): on a whole run, real pips wrote each kind and action at least once.

    A kind the code starts to write without the schema saying so already fails the run that
    meets it; this catches the schema promising what no test makes a real pip write.
    """
    config = request.config
    source = getattr(config, "args_source", None)  # pytest 7.2+
    selected = (
        getattr(source, "name", "") == "TESTPATHS"
        and not config.option.keyword
        and not config.option.markexpr
        and not config.getoption("deselect")
        and not config.getoption("lf", default=False)
    )
    if not selected or config.getoption("partial_events"):
        pytest.skip("only a whole run meets every kind and action (README's test command)")
    if sys.platform != "linux":
        pytest.skip("the read-only and full-disk cases run on Linux")
    REPORTS.sweep(tmp_path_factory.getbasetemp())
    assert REPORTS.unmet() == {"kind": [], "action": []}, (
        f"met kinds {sorted(REPORTS.kinds)}, actions {sorted(REPORTS.actions)} "
        f"in {len(REPORTS.checked)} reports"
    )
