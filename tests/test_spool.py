"""The spool between a guarded pip and its child pips: handed over, collected once, cleaned up."""

from __future__ import annotations

from pathlib import Path

from pip_cache_guard import spool
from pip_cache_guard.ledger import Event

EVENT = Event("https://host/x.whl", "/c/http-v2/a/b", "corrupt", "truncated", "deleted", 12)


def test_the_first_pip_exports_the_spool_and_its_children_join_it() -> None:
    environ: dict[str, str] = {}
    path, owner = spool.open_or_join(environ)
    assert owner and environ[spool.SPOOL_VARIABLE] == path
    assert spool.open_or_join(dict(environ)) == (path, False)


def test_children_hand_over_and_the_owner_collects_once(tmp_path: Path) -> None:
    path = str(tmp_path / "spool")
    spool.hand_over(path, [EVENT], "/c/http-v2", "26.3")
    spool.hand_over(path, [], "/c/http-v2", "26.3")
    (tmp_path / "spool" / "123-dead.json.tmp").write_text("{")  # a child killed mid-write
    (tmp_path / "spool" / "456-beef.json").write_text('{"events": "not a list"}')

    assert spool.collect(path) == [("/c/http-v2", EVENT)]
    assert not (tmp_path / "spool").exists()
    assert spool.collect(path) == []
