"""The spool between a guarded pip and its child pips: handed over, collected once, cleaned up."""

from __future__ import annotations

from pathlib import Path

from pip_cache_guard import spool
from pip_cache_guard.ledger import Event

EVENT = Event(
    "https://host/x.whl", "/c/http-v2/a/b", "corrupt", "truncated", "deleted", 12, "fingerprint"
)


def test_a_spool_is_inherited_only_from_the_environment_a_guarded_pip_gave() -> None:
    assert spool.inherited({}) is None
    path = spool.new_path()
    assert spool.inherited({spool.SPOOL_VARIABLE: path}) == path
    assert spool.new_path() != path


def test_children_hand_over_and_the_owner_collects_once(tmp_path: Path) -> None:
    path = str(tmp_path / "spool")
    spool.hand_over(path, [EVENT], "/c/http-v2")
    spool.hand_over(path, [], "/c/http-v2")
    (tmp_path / "spool" / "123-dead.json.tmp").write_text("{")  # a child killed mid-write
    (tmp_path / "spool" / "456-beef.json").write_text('{"events": "not a list"}')

    assert spool.collect(path) == [("/c/http-v2", EVENT)]
    assert not (tmp_path / "spool").exists()
    assert spool.collect(path) == []
