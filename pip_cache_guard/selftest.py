"""``pip-cache-guard selftest``: prove, here and offline, that the hook heals what pip reads.

A throwaway cache gets one damaged entry; the installed pip's own CacheController (imported
through the startup hook, so patched exactly as inside pip) looks it up with the installed pip's
own ``SafeFileCache``, as pip's CacheControl adapter does before any download. The test passes
when pip's lookup came back a miss, the entry's file is gone and the guard recorded it. Nothing
touches the network, the user's cache, the report or the history (``hook.not_a_pip_run``).
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
from dataclasses import dataclass
from typing import Any

from pip_cache_guard import FINDER_MARK, KILL_SWITCH, hook
from pip_cache_guard._import_hook import PIP_RUN
from pip_cache_guard.hook import STATE
from pip_cache_guard.switches import is_disabled

CONTROLLER = "pip._vendor.cachecontrol.controller"
# A name that can never resolve (RFC 2606 reserves .invalid): the lookup cannot reach a network.
URL = "https://selftest.pip-cache-guard.invalid/simple/selftest/"
BODY = b"<!DOCTYPE html><title>selftest</title>"


@dataclass(frozen=True)
class Outcome:
    passed: bool
    message: str  # one or two lines, without the trailing newline


def run() -> Outcome:
    """Run the self-test in this process; never raises."""
    hook.not_a_pip_run()  # before pip's controller is imported (and registers the exit handler)
    try:
        problem = _precondition_problem()
        if problem is not None:
            return Outcome(False, problem)
        return _provoke()
    except Exception as exc:  # the self-test itself went wrong: a failure, said plainly
        return Outcome(False, f"the self-test could not run: {type(exc).__name__}: {exc}")


def _precondition_problem() -> str | None:
    if is_disabled():
        value = os.environ.get(KILL_SWITCH, "")
        return f"the kill switch is set ({KILL_SWITCH}={value}): pip runs unguarded here"
    try:
        import wrapt  # noqa: F401
    except ImportError:
        return "wrapt is not installed: the hook cannot patch pip (reinstall pip-cache-guard)"
    if not any(getattr(finder, FINDER_MARK, False) for finder in sys.meta_path):
        return (
            "the startup hook is not active in this interpreter "
            "(pip_cache_guard.pth is missing from site-packages): reinstall pip-cache-guard"
        )
    return None


def _provoke() -> Outcome:
    try:
        controller_module = importlib.import_module(CONTROLLER)
        network_cache = importlib.import_module("pip._internal.network.cache")
        requests = importlib.import_module("pip._vendor.requests")
        msgpack = importlib.import_module("pip._vendor.msgpack")
    except ImportError as exc:
        return Outcome(False, f"pip's cache code could not be imported ({exc}): is pip installed?")
    patch_point = PIP_RUN.patch_points.get(CONTROLLER)
    if patch_point is None or patch_point.startswith("unsupported"):
        return Outcome(False, f"the hook did not patch pip's {CONTROLLER} ({patch_point})")
    pip_version = getattr(sys.modules.get("pip"), "__version__", "?")
    with tempfile.TemporaryDirectory(prefix="pip-cache-guard-selftest-") as scratch:
        cache = network_cache.SafeFileCache(os.path.join(scratch, "http-v2"))
        controller = controller_module.CacheController(cache)
        request = requests.Request("GET", URL).prepare()
        key = controller.cache_url(request.url)
        cache.set(key, _damaged_entry(msgpack))
        path = cache._get_cache_path(key)
        files = [path]
        if callable(getattr(cache, "set_body", None)):  # pip 23.3+: the body is a file of its own
            cache.set_body(key, BODY)
            files.append(f"{path}.body")
        try:
            response = controller.cached_request(request)
        except Exception as exc:
            return Outcome(False, f"pip {pip_version} raised on the damaged entry: {exc!r}")
        event = next((e for e in STATE.ledger.events() if e.cache_file == path), None)
        if response:
            return Outcome(False, f"pip {pip_version} used the damaged entry")
        if event is None:
            return Outcome(False, f"pip {pip_version} read a damaged entry unseen by the hook")
        if event.action != "deleted" or any(os.path.exists(name) for name in files):
            why = f"{event.action}: {event.reason}"
            return Outcome(False, f"the hook saw the damaged entry but it is still there ({why})")
    return Outcome(
        True,
        f"selftest passed: pip {pip_version} read a damaged cache entry ({event.kind}); the hook "
        "turned it into a miss, deleted it and recorded it.\n"
        f"  patched: {patch_point}; done in a throwaway cache (yours was not touched).",
    )


def _damaged_entry(msgpack: Any) -> bytes:
    """A cache entry as pip writes it (``cc=4,`` + msgpack), cut in half as a full disk would."""
    document: dict[str, Any] = {
        "response": {
            "body": b"",
            "headers": {
                "Content-Type": "text/html",
                "Content-Length": str(len(BODY)),
                "Cache-Control": "max-age=600",
            },
            "status": 200,
            "version": 11,
            "reason": "OK",
            "decode_content": True,
        },
        "vary": {},
    }
    whole: bytes = b"cc=4," + msgpack.dumps(document, use_bin_type=True)
    return whole[: len(whole) // 2]
