"""The incident history: bounded, safe under concurrent writers, tolerant of a damaged line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pip_cache_guard import doctor, entries, history, render
from pip_cache_guard.ledger import Event


def _event(
    kind: str = "corrupt", name: str = "demo-1.0-py3-none-any.whl", fingerprint: str = ""
) -> Event:
    marks = {"fingerprint": fingerprint} if fingerprint else {}
    url = f"https://***@host/files/{name}"
    return Event(url, f"/c/http-v2/{name}", kind, "why", "deleted", 9, **marks)


def test_incidents_come_back_newest_first(tmp_path: Path) -> None:
    path = str(tmp_path / "history.jsonl")
    history.append("/cache/a", "26.3", [_event()], path)
    history.append("/cache/b", "25.3", [_event("vary-mismatch")], path)

    incidents = history.read(path)

    assert [incident.cache_dir for incident in incidents] == ["/cache/b", "/cache/a"]
    assert incidents[1].events[0]["url"] == "https://***@host/files/demo-1.0-py3-none-any.whl"
    assert (incidents[1].damaged, incidents[0].damaged) == (1, 0)


def test_the_file_stays_bounded(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    events = [_event(name=f"package-{n}-1.0-py3-none-any.whl") for n in range(20)]
    for _ in range(400):
        history.append("/cache", "26.3", events, str(path))

    assert path.stat().st_size <= history.MAX_BYTES
    assert all(json.loads(line) for line in path.read_text().splitlines())
    assert history.read(str(path))  # the newest incidents survive the trimming


def test_a_damaged_line_is_skipped_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    history.append("/cache", "26.3", [_event()], str(path))
    with path.open("a") as stream:
        stream.write('{"time": "not a number"\n\x00\x01garbage\n')
    history.append("/cache", "26.3", [_event()], str(path))

    assert len(history.read(str(path))) == 2


def test_lines_of_the_wrong_shape_are_skipped_and_counting_survives(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    wrong = [[1, 2], "text", 7, {"time": 1, "cache_dir": "/cache", "events": ["a", 3, None]},
             {"time": 2, "cache_dir": "/cache", "events": 5}]  # fmt: skip
    path.write_bytes(
        b"".join(json.dumps(line).encode() + b"\n" for line in wrong) + os.urandom(300)
    )
    history.append("/cache", "26.3", [_event()], str(path))

    incidents = history.read(str(path))

    assert history.recent_damage("/cache", now=incidents[0].time, path=str(path)) == 1
    assert incidents[0].cache_dir == "/cache" and incidents[0].damaged == 1


@pytest.mark.skipif(not hasattr(os, "O_NOFOLLOW"), reason="no O_NOFOLLOW here")
@pytest.mark.parametrize("dangling", [False, True])
def test_a_history_that_is_a_link_is_never_written_through(tmp_path: Path, dangling: bool) -> None:
    target = tmp_path / "elsewhere" / "precious.txt"
    target.parent.mkdir()
    if not dangling:
        target.write_bytes(b"not the guard's")
    path = tmp_path / "state" / "history.jsonl"
    path.parent.mkdir()
    path.symlink_to(target)

    with pytest.raises(OSError):
        history.append("/cache", "26.3", [_event()], str(path))

    assert (target.read_bytes() == b"not the guard's") if not dangling else not target.exists()
    assert path.is_symlink()


def test_recurrence_counts_damage_in_this_cache_within_the_window(tmp_path: Path) -> None:
    path = str(tmp_path / "history.jsonl")
    for _ in range(2):
        history.append("/cache", "26.3", [_event()], path)
    history.append("/cache", "26.3", [_event("vary-mismatch")], path)  # not damage
    history.append("/other", "26.3", [_event()], path)  # another cache

    now = history.read(path)[0].time
    assert history.recent_damage("/cache", now=now, path=path) == 2
    assert history.recent_damage("/cache", now=now + history.RECURRENCE_WINDOW + 60, path=path) == 0


# -- recurrence: distinct damage, not sightings ---------------------------------------------------


def test_the_same_damage_met_by_four_pips_counts_once(tmp_path: Path) -> None:
    path = str(tmp_path / "history.jsonl")
    for _ in range(4):  # four pips met the same two damaged entries (at once, or run after run)
        history.append("/cache", "26.3", [_event(fingerprint="aa"), _event(fingerprint="bb")], path)

    assert history.recent_damage("/cache", path=path) == 1


def test_damage_new_each_time_counts_each_time(tmp_path: Path) -> None:
    path = str(tmp_path / "history.jsonl")
    for mark in ("aa", "bb", "cc"):
        history.append(
            "/cache", "26.3", [_event(fingerprint="old"), _event(fingerprint=mark)], path
        )

    assert history.recent_damage("/cache", path=path) == history.RECURRENCE_THRESHOLD == 3


def test_damage_first_seen_before_the_window_is_not_new_within_it(tmp_path: Path) -> None:
    path = str(tmp_path / "history.jsonl")
    history.append("/cache", "26.3", [_event(fingerprint="aa")], path)
    later = history.read(path)[0].time + history.RECURRENCE_WINDOW + 60
    history.append("/cache", "26.3", [_event(fingerprint="aa")], path)  # still undeletable

    assert history.recent_damage("/cache", now=later, path=path) == 0


def test_lines_without_fingerprints_still_count_as_before(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    old_event = {"url": "u", "cache_file": "/c/f", "kind": "corrupt", "reason": "r"}
    old_event |= {"action": "delete-failed", "bytes": 9}
    old = {"time": 1.0, "cache_dir": "/cache", "pip_version": "26.2", "events": [old_event]}
    path.write_text(json.dumps(old) + "\n" + json.dumps(old | {"time": 2.0}) + "\n")
    history.append("/cache", "26.3", [_event(fingerprint="aa")], str(path))

    assert history.recent_damage("/cache", now=3.0, path=str(path)) == 3


def test_a_fingerprint_names_one_damaged_state_of_an_entry(tmp_path: Path) -> None:
    metadata = tmp_path / "entry"
    body = tmp_path / "entry.body"
    metadata.write_bytes(b"garbage")
    body.write_bytes(b"B" * 50)
    first = entries.damage_fingerprint(str(metadata), b"garbage", body.stat())

    assert entries.damage_fingerprint(str(metadata), b"garbage", body.stat()) == first
    assert entries.damage_fingerprint(str(metadata), b"garbage!", body.stat()) != first
    assert entries.damage_fingerprint(str(tmp_path / "other"), b"garbage", body.stat()) != first
    new_body = tmp_path / "new.body"  # pip stores a new body by renaming it into place
    new_body.write_bytes(b"B" * 50)
    os.utime(new_body, ns=(1, 1))
    new_body.replace(body)
    assert entries.damage_fingerprint(str(metadata), b"garbage", body.stat()) != first


# -- damaged lines and files ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        '{"time": 1.0, "cache_dir": "/cache", "pip_version": null, "events": "corrupt"}',
        '{"time": 1e300, "cache_dir": "/cache", "pip_version": null, "events": []}',
        '{"time": NaN, "cache_dir": "/cache", "pip_version": null, "events": []}',
        '{"time": -5, "cache_dir": "/cache", "pip_version": null, "events": []}',
        '{"time": true, "cache_dir": "/cache", "pip_version": null, "events": []}',
        '{"time": 1.0, "cache_dir": ["/cache"], "pip_version": null, "events": []}',
        '{"time": 1.0, "cache_dir": "/cache", "pip_version": 26, "events": []}',
        '{"time": 1.0, "cache_dir": "/cache", "pip_version": null, "events": ["corrupt"]}',
        '{"time": 1.0, "cache_dir": "/cache", "pip_version": null, "events": [{"url": 1}]}',
        "[1, 2]",
        "[" * 100_000,
    ],
)
def test_a_well_formed_line_of_the_wrong_shape_is_skipped(tmp_path: Path, line: str) -> None:
    path = tmp_path / "history.jsonl"
    history.append("/cache", "26.3", [_event()], str(path))
    with path.open("a") as stream:
        stream.write(line + "\n")

    incidents = history.read(str(path))

    assert [incident.cache_dir for incident in incidents] == ["/cache"]
    text = render.history_text(incidents, str(path))
    assert "1 corrupt" in text
    assert "history: 1 incident, newest first" in text


def test_a_token_in_a_line_written_before_redaction_improved_is_not_shown(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    event = Event("https://host/x.whl?SECRET_TOKEN_abc123", "/c/f", "corrupt", "why", "deleted", 9)
    history.append("/cache", "26.2", [event], str(path))

    (incident,) = history.read(str(path))

    assert incident.events[0]["url"] == "https://host/x.whl?***"
    assert "SECRET" not in json.dumps(render.history_json([incident]))


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=12,
)
_fields = st.fixed_dictionaries(
    {},
    optional={
        "time": st.one_of(st.floats(), st.integers(), _json),
        "cache_dir": st.one_of(st.text(), _json),
        "pip_version": st.one_of(st.none(), st.text(), _json),
        "events": st.one_of(
            _json,
            st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        name: st.one_of(st.text(), _json)
                        for name in ("url", "cache_file", "kind", "reason", "action")
                    }
                    | {"bytes": st.one_of(st.integers(), _json), "fingerprint": st.text()},
                ),
                max_size=4,
            ),
        ),
    },
)


@pytest.fixture(scope="module")
def fuzzed_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "history.jsonl"


@settings(deadline=None)
@given(records=st.lists(st.one_of(_fields, _json, st.binary()), max_size=5))
def test_reading_and_showing_any_json_lines_never_raises(
    fuzzed_file: Path, records: list[Any]
) -> None:
    """Any JSON value on a line (or bytes that are none): never an exception, in any reader."""
    path = fuzzed_file
    lines = [r if isinstance(r, bytes) else json.dumps(r).encode() for r in records]
    path.write_bytes(b"".join(line + b"\n" for line in lines))

    incidents = history.read(str(path))

    render.history_text(incidents, str(path))
    json.dumps(render.history_json(incidents))
    history.recent_damage("/cache", path=str(path))


def test_doctor_reports_an_unreadable_history_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unreadable = tmp_path / "history.jsonl"
    unreadable.mkdir()  # even root cannot read a directory as a file
    monkeypatch.setattr(history, "history_path", lambda: str(unreadable))

    health = doctor.examine(str(tmp_path / "cache"))

    assert health.history_error is not None and not health.healthy
    text = render.doctor_text(health)
    assert f"[!!] history: {unreadable} cannot be read (Is a directory)" in text
    assert "recent incidents: none" in text
    assert render.doctor_json(health)["history_error"] == health.history_error


def test_concurrent_writers_lose_no_line_and_break_none(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    writer = (
        "import sys\n"
        "from pip_cache_guard import history\n"
        "from pip_cache_guard.ledger import Event\n"
        "for n in range(50):\n"
        "    event = Event('u', 'f', 'corrupt', 'r' * 20, 'deleted', n)\n"
        "    history.append(sys.argv[1], None, [event] * 5, sys.argv[2])\n"
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", writer, f"/cache/{n}", str(path)]) for n in range(4)
    ]
    assert [process.wait(timeout=120) for process in processes] == [0, 0, 0, 0]

    lines = path.read_text().splitlines()
    assert path.stat().st_size < history.MAX_BYTES  # so no line was trimmed away
    assert len(lines) == 200
    assert all(len(json.loads(line)["events"]) == 5 for line in lines)
