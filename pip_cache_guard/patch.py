"""Integration with CacheControl: wrap the loader of a freshly imported controller module.

Imported by the startup finder only once pip (or a program using standalone CacheControl) imports
its controller module, so wrapt's import cost is paid only inside pip.

Patch points are chosen by what the module has, never by version (pip 26 dropped
``cachecontrol.__version__``):

- ``CacheController._load_from_cache(self, request)``: CacheControl 0.13.1+ (pip 23.3 - 26.3 at
  least). Every cache read of a controller goes through it.
- ``Serializer.loads(self, request, data, body_file=None)``: wrapped too, but only to capture the
  exact bytes pip was given while one of our loads is running on the same thread. Re-reading the
  file afterwards would race with other pips sharing the cache.

A module without these is left alone, and ``STATE.patch_point`` says so (for ``doctor``).
"""

from __future__ import annotations

import atexit
import inspect
import os
import sys
import threading
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable

import wrapt

from pip_cache_guard import _boot, entries, report
from pip_cache_guard.diagnose import Unpack, Verdict, body_size_problem, diagnose
from pip_cache_guard.ledger import Event, Ledger

REPORT_VARIABLE = "PIP_CACHE_GUARD_REPORT"
_PATCHED_MARK = "_pip_cache_guard_patched"


@dataclass
class GuardState:
    """What this process's guard did: which modules it patched and what it saw."""

    ledger: Ledger = field(default_factory=Ledger)
    patch_points: dict[str, str] = field(default_factory=dict)
    pip_version: str | None = None
    exit_handler_registered: bool = False


STATE = GuardState()
_capture_slot = threading.local()


@dataclass
class _Captured:
    """The arguments ``Serializer.loads`` received during one guarded load."""

    data: bytes | None = None
    body_file: Any = None


def apply(module: ModuleType) -> None:
    """Patch one controller module in place; a second call for the same module does nothing."""
    if getattr(module, _PATCHED_MARK, False):
        return
    setattr(module, _PATCHED_MARK, True)
    package = module.__name__.rpartition(".")[0]
    serialize = sys.modules.get(f"{package}.serialize")
    controller = getattr(module, "CacheController", None)
    serializer = getattr(serialize, "Serializer", None)
    msgpack = getattr(serialize, "msgpack", None)
    if controller is None or serializer is None or msgpack is None:
        STATE.patch_points[module.__name__] = "unsupported: no CacheController/Serializer/msgpack"
        return
    if not _takes_request_only(getattr(controller, "_load_from_cache", None)):
        STATE.patch_points[module.__name__] = "unsupported: no CacheController._load_from_cache"
        return

    def unpack(payload: bytes) -> Any:
        return msgpack.loads(payload, raw=False)

    wrapt.wrap_function_wrapper(serializer, "loads", _capture_loads)
    wrapt.wrap_function_wrapper(controller, "_load_from_cache", _make_load_wrapper(unpack))
    STATE.patch_points[module.__name__] = "CacheController._load_from_cache"
    if package.startswith("pip."):
        STATE.pip_version = getattr(sys.modules.get("pip"), "__version__", None)
    if not STATE.exit_handler_registered:
        atexit.register(_at_exit)
        STATE.exit_handler_registered = True


def _takes_request_only(method: Any) -> bool:
    """Whether ``method`` looks like ``_load_from_cache(self, request)``."""
    if not callable(method):
        return False
    try:
        parameters = list(inspect.signature(method).parameters)
    except (TypeError, ValueError):
        return False
    return parameters == ["self", "request"]


def _capture_loads(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    captured: _Captured | None = getattr(_capture_slot, "current", None)
    if captured is not None:
        captured.data = args[1] if len(args) > 1 else kwargs.get("data")
        captured.body_file = args[2] if len(args) > 2 else kwargs.get("body_file")
    return wrapped(*args, **kwargs)


def _make_load_wrapper(unpack: Unpack) -> Callable[..., Any]:
    def guarded_load(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        request = args[0] if args else kwargs.get("request")
        if STATE.ledger.cache_dir is None:
            _safely(_note_cache_dir, instance)
        outer = getattr(_capture_slot, "current", None)
        captured = _Captured()
        _capture_slot.current = captured
        try:
            response = wrapped(*args, **kwargs)
        except Exception:
            _capture_slot.current = outer
            if _safely(_settle_failure, instance, request, captured, unpack):
                return None  # the entry was damaged: a miss makes pip download afresh
            raise
        _capture_slot.current = outer
        if response is None:
            _safely(_settle_failure, instance, request, captured, unpack)
        elif _safely(_settle_hit, instance, request, captured, unpack, response):
            return None
        return response

    return guarded_load


def _safely(function: Callable[..., bool], *args: Any) -> bool:
    """The one boundary with pip: nothing raised by the guard's own logic reaches pip."""
    try:
        return function(*args)
    except Exception:
        _boot.report_internal_error(function.__name__)
        return False


def _note_cache_dir(controller: Any) -> bool:
    """Remember which cache this process uses, for the report (also when nothing goes wrong)."""
    cache_dir = getattr(controller.cache, "directory", None)
    if isinstance(cache_dir, str):
        STATE.ledger.note_cache_dir(os.path.abspath(cache_dir))
    return False


def _settle_failure(controller: Any, request: Any, captured: _Captured, unpack: Unpack) -> bool:
    """After a load that gave nothing or raised: diagnose what pip was given and act on it.

    Returns True when the entry is proven damaged (so a raising load may become a miss).
    """
    if captured.data is None:
        return False  # nothing was read: a plain miss, no entry involved
    body_size = _body_size(captured.body_file)
    verdict = diagnose(captured.data, unpack, _headers_of(request), body_size)
    if verdict.kind == "ok":
        return False  # pip skipped it for a reason we cannot prove to be damage
    _record(controller, request, verdict, captured.data, None)
    return verdict.is_damage


def _settle_hit(
    controller: Any, request: Any, captured: _Captured, unpack: Unpack, response: Any
) -> bool:
    """After a load that found an entry: one fstat proves whether its body has the right size."""
    body_size = _body_size(captured.body_file)
    if body_size is None or captured.data is None:
        return False
    problem = body_size_problem(response.headers, body_size)
    if problem is None:
        return False
    _record(controller, request, Verdict("body-mismatch", problem), captured.data, body_size)
    captured.body_file.close()
    return True


def _record(
    controller: Any, request: Any, verdict: Verdict, data: bytes, body_size: int | None
) -> None:
    """Delete a damaged entry (if the cache is a directory of files) and keep one event for it."""
    cache = controller.cache
    url = str(request.url)
    cache_dir = getattr(cache, "directory", None)
    metadata_path = _metadata_path(cache, url)
    ledger = STATE.ledger
    if not isinstance(cache_dir, str) or metadata_path is None:
        ledger.record("", url, _event(url, "", verdict, "kept", 0))
        return
    cache_dir = os.path.abspath(cache_dir)
    ledger.note_cache_dir(cache_dir)
    size = entries.entry_size(metadata_path)
    if verdict.is_damage:
        outcome = entries.delete_entry(cache_dir, metadata_path, data, body_size)
        action, reason = outcome.action, verdict.reason
        if outcome.reason:
            reason = f"{reason}; {outcome.reason}"
        size = outcome.bytes_freed if outcome.action == "deleted" else size
    else:
        action, reason = "kept", verdict.reason
    ledger.record(
        cache_dir, url, _event(url, metadata_path, Verdict(verdict.kind, reason), action, size)
    )


def _event(url: str, cache_file: str, verdict: Verdict, action: str, size: int) -> Event:
    return Event(report.redact_url(url), cache_file, verdict.kind, verdict.reason, action, size)


def _metadata_path(cache: Any, url: str) -> str | None:
    """Ask the cache object where it keeps ``url`` (pip: ``_get_cache_path``, others: ``_fn``)."""
    for name in ("_get_cache_path", "_fn"):
        locate = getattr(cache, name, None)
        if callable(locate):
            return str(locate(url))
    return None


def _headers_of(request: Any) -> dict[str, str] | None:
    headers = getattr(request, "headers", None)
    return dict(headers) if headers is not None else None


def _body_size(body_file: Any) -> int | None:
    if body_file is None:
        return None
    try:
        return os.fstat(body_file.fileno()).st_size
    except (OSError, AttributeError, ValueError):
        return None


def _at_exit() -> None:
    """Write the JSON report (if asked) and the summary (if anything happened)."""
    try:
        events = STATE.ledger.events()
        cache_dir = STATE.ledger.cache_dir
        report_path = os.environ.get(REPORT_VARIABLE)
        if report_path:
            data = report.document(events, cache_dir, STATE.pip_version)
            report.write_json_atomically(report_path, data)
        level = report.verbosity(sys.argv[1:], os.environ) if STATE.pip_version else 0
        if events and level > -2:
            sys.stderr.write(report.summary(events, cache_dir, level))
            sys.stderr.flush()
    except Exception:
        _boot.report_internal_error("the exit summary")
