"""The incident history: bounded, safe under concurrent writers, tolerant of a damaged line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pip_cache_guard import history
from pip_cache_guard.ledger import Event


def _event(kind: str = "corrupt", name: str = "demo-1.0-py3-none-any.whl") -> Event:
    return Event(f"https://***@host/files/{name}", f"/c/http-v2/{name}", kind, "why", "deleted", 9)


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


def test_recurrence_counts_damage_in_this_cache_within_the_window(tmp_path: Path) -> None:
    path = str(tmp_path / "history.jsonl")
    for _ in range(2):
        history.append("/cache", "26.3", [_event()], path)
    history.append("/cache", "26.3", [_event("vary-mismatch")], path)  # not damage
    history.append("/other", "26.3", [_event()], path)  # another cache

    now = history.read(path)[0].time
    assert history.recent_damage("/cache", now=now, path=path) == 2
    assert history.recent_damage("/cache", now=now + history.RECURRENCE_WINDOW + 60, path=path) == 0


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
