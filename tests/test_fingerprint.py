"""Two pips met the same damaged entry; the faster one deleted it and pip stored a fresh entry
(new metadata, then a new body) before the slower one judged what it had read, opening the fresh
body. The slower one must name the same damage (the history counts it once) and touch nothing of
the fresh entry. In-process, with standalone CacheControl's own file cache, each pip judging
into a ledger of its own, as two processes would.
"""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import msgpack
import pytest
from cachecontrol.caches import SeparateBodyFileCache
from cachecontrol.controller import CacheController

from pip_cache_guard import hook
from pip_cache_guard.hook import lookups
from pip_cache_guard.ledger import Event, Ledger

URL = "https://files.example/demo-1.0-py3-none-any.whl"
FRESH, FRESH_BODY = b"the metadata of a fresh entry", b"the wheel's bytes, downloaded afresh"


def _lookup(controller: CacheController) -> lookups.Lookup:
    """A lookup of URL as the guard's wrapper starts it, up to pip's read of the metadata."""
    request = types.SimpleNamespace(url=URL, headers={})
    lookup = lookups.Lookup(
        controller, request, lambda payload: msgpack.loads(payload, raw=False), key=lambda: URL
    )
    lookups.note_entry(lookup)  # what the wrapper does before calling pip's load
    lookup.data = controller.cache.get(URL)
    return lookup


def _judge(lookup: lookups.Lookup, cache: SeparateBodyFileCache, monkeypatch: Any) -> Event:
    """The rest of that pip's lookup: open the body there is now, judge, record in its ledger."""
    monkeypatch.setattr(hook.STATE, "ledger", Ledger())
    lookup.body_file = cache.get_body(URL)
    assert lookups.settle_failure(lookup)
    (event,) = hook.STATE.ledger.events()
    return event


def test_a_pip_slow_to_judge_names_the_damage_it_read_as_the_fast_one_did(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = SeparateBodyFileCache(str(tmp_path / "http-v2"))
    controller = CacheController(cache)
    cache.set(URL, b"\x93garbage, not an entry", None)
    cache.set_body(URL, b"the wheel's bytes")

    slow = _lookup(controller)  # read the damaged metadata, then was held up
    fast = _judge(_lookup(controller), cache, monkeypatch)  # read it, judged it, deleted it
    cache.set(URL, FRESH, None)  # pip stores a fresh entry: the metadata first, then the body
    cache.set_body(URL, FRESH_BODY)
    late = _judge(slow, cache, monkeypatch)

    assert (fast.kind, fast.action) == ("corrupt", "deleted")
    assert (late.kind, late.action) == ("corrupt", "already-deleted")
    assert late.fingerprint == fast.fingerprint
    assert cache.get(URL) == FRESH
    body = cache.get_body(URL)
    assert body is not None
    with body:
        assert body.read() == FRESH_BODY


def test_the_same_bytes_damaged_anew_are_new_damage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = SeparateBodyFileCache(str(tmp_path / "http-v2"))
    controller = CacheController(cache)
    marks = []
    for _ in range(2):  # the same damage written again after pip stored a fresh entry
        cache.set(URL, b"", None)  # a full disk leaves an empty metadata file
        cache.set_body(URL, b"the wheel's bytes")
        marks.append(_judge(_lookup(controller), cache, monkeypatch).fingerprint)

    assert marks[0] != marks[1]


def test_a_pip_that_opens_the_body_after_another_took_the_entry_says_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The slower pip read the metadata just before the faster one took the damaged entry, and
    opened the body just after: no body. That is the other pip's deletion, which it reports, not
    a missing body: a miss, and no event of its own (it used to say "missing-body, kept")."""
    cache = SeparateBodyFileCache(str(tmp_path / "http-v2"))
    controller = CacheController(cache)
    cache.set(URL, b"\x93garbage, not an entry", None)
    cache.set_body(URL, b"the wheel's bytes")

    slow = _lookup(controller)
    fast = _judge(_lookup(controller), cache, monkeypatch)
    monkeypatch.setattr(hook.STATE, "ledger", Ledger())
    slow.body_file = cache.get_body(URL)

    assert (fast.kind, fast.action) == ("corrupt", "deleted")
    assert slow.body_file is None
    assert lookups.settle_hit(slow, object())  # not used: pip fetches it
    assert hook.STATE.ledger.events() == []
