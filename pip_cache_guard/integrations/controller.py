"""Integration with CacheControl's controller: wrap the loaders of a freshly imported one.

Imported by the startup finder only once pip (or a program using standalone CacheControl) imports
its controller module, so wrapt's import cost is paid only inside pip. Patch points are chosen by
what the module has, never by version (pip 26 dropped ``cachecontrol.__version__``):

- CacheControl 0.13.1+ (pip 23.3 - 26.3): every read goes through
  ``CacheController._load_from_cache(self, request)``; that is where the guard decides.
- CacheControl 0.12 (pip 21.3 - 23.2): no such method. ``cached_request``, ``conditional_headers``
  and ``update_cached_response`` call ``Serializer.loads`` directly; they only mark the thread as
  inside a guarded lookup, and the guard decides around ``Serializer.loads`` itself.

In both, ``Serializer.loads(self, request, data, ...)`` is wrapped to capture the exact bytes pip
was given: re-reading the file afterwards would race with other pips sharing the cache. Where
``Serializer.prepare_response(self, request, cached, ...)`` exists (every pip from 21.3 to 26.3),
the document it gets, just decoded by pip, is judged before pip changes it: a hit costs no second
decode. A module with neither shape is left alone, and ``apply`` says so (for
``doctor``).

pip's own "Cache entry deserialization failed, entry ignored" warning (every version, logged by the
controller right after ``loads`` gave nothing) is folded into the guard's summary: the guard judges
the entry as soon as ``loads`` returns nothing, so when the warning is logged it knows whether it
handled that lookup, and a filter on the controller's logger drops exactly those records, unless
pip runs verbose (``-v``). A warning for an entry the guard did not handle is left alone.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
import threading
from collections.abc import Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable

from pip_cache_guard._import_hook import PIP_RUN
from pip_cache_guard.integrations import (
    Wrapper,
    deciding,
    has_parameters,
    sum_up_at_exit,
    wrap_once,
)

if TYPE_CHECKING:
    from pip_cache_guard.diagnose import Reader, Unpack
    from pip_cache_guard.hook.lookups import Lookup

_LEGACY_METHODS = ("cached_request", "conditional_headers", "update_cached_response")
PIP_WARNING = "Cache entry deserialization failed, entry ignored"
_slot = threading.local()  # the Lookup running on this thread, if any


def apply(module: ModuleType) -> str:
    """Patch one controller module in place; offering the same module again changes nothing.

    The marks sit on the classes, not the module: ``importlib.reload`` re-executes the module in
    the same namespace with new, unpatched classes, and those are patched again.
    """
    package = module.__name__.rpartition(".")[0]
    serialize = sys.modules.get(f"{package}.serialize")
    controller = getattr(module, "CacheController", None)
    serializer = getattr(serialize, "Serializer", None)
    msgpack = getattr(serialize, "msgpack", None)
    if controller is None or serializer is None or msgpack is None:
        return "unsupported: no CacheController/Serializer/msgpack"
    if not has_parameters(serializer, "loads", ["self", "request", "data"]):
        return "unsupported: unknown Serializer.loads"

    def unpack(payload: bytes) -> Any:
        return msgpack.loads(payload, raw=False)

    reader = functools.partial(_reader, package, controller)
    pips_own = package.endswith("pip._vendor.cachecontrol")  # pip's, or pipenv's copy of pip's
    if has_parameters(controller, "_load_from_cache", ["self", "request"], exact=True):
        _wrap_serializer(serializer)
        wrap_once(controller, "_load_from_cache", _load_wrapper(unpack, reader, pips_own))
        patched = "CacheController._load_from_cache"
    elif all(has_parameters(controller, name, ["self", "request"]) for name in _LEGACY_METHODS):
        _wrap_serializer(serializer)
        for name in _LEGACY_METHODS:
            wrap_once(controller, name, _legacy_lookup_wrapper(unpack, reader, pips_own))
        patched = "Serializer.loads inside CacheController lookups"
    else:
        return "unsupported: unknown CacheController"
    if pips_own:
        _record_stored_bodies(controller, serializer, msgpack)
    _fold_warning(module)
    sum_up_at_exit()
    return patched


@functools.cache
def _reader(package: str, controller: type) -> Reader:
    """Which CacheControl this is (``diagnose.Reader``): its name, and whether it keeps an entry
    whose ``Date`` it cannot parse, known by what the module has, as the patch points are (0.15
    moved the freshness check into ``CacheController._is_fresh`` when it began to keep them).
    Asked at the first lookup: while the controller is patched its package may still be importing
    (0.14+ sets ``__version__`` after importing it)."""
    from pip_cache_guard.hook import lookups  # late: see hook.LATE_MODULES

    version = getattr(sys.modules.get(package), "__version__", None)
    name = "pip's vendored CacheControl" if package.startswith("pip._vendor.") else "cachecontrol"
    if isinstance(version, str):
        name = f"{name} {version}"
    return lookups.Reader(name, hasattr(controller, "_is_fresh"))


def _wrap_serializer(serializer: type) -> None:
    wrap_once(serializer, "loads", _capture_loads)
    if has_parameters(serializer, "prepare_response", ["self", "request", "cached"]):
        wrap_once(serializer, "prepare_response", _judge_prepared)


@contextlib.contextmanager
def _running(lookup: Lookup | None, slot: str = "lookup") -> Iterator[None]:
    outer = getattr(_slot, slot, None)
    setattr(_slot, slot, lookup)
    try:
        yield
    finally:
        setattr(_slot, slot, outer)


@deciding("pip_cache_guard.hook.lookups")
def _capture_loads(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    from pip_cache_guard.hook import lookups  # late: see hook.LATE_MODULES

    lookup: Lookup | None = getattr(_slot, "lookup", None)
    if lookup is None:
        return wrapped(*args, **kwargs)
    lookup.data = args[1] if len(args) > 1 else kwargs.get("data")
    lookup.body_file = args[2] if len(args) > 2 else kwargs.get("body_file")
    lookup.verdict = lookup.body = lookup.damaged = None  # judged afresh for these bytes
    lookup.expectation = None
    with _running(lookup, "loading"):  # the serializer is decoding this lookup's bytes
        if not lookup.decide_in_loads:
            # Judged here, not after the controller: before it logs its warning, and while the
            # body file it opened is open (CacheControl 0.15 closes it when ``loads`` fails).
            try:
                response = wrapped(*args, **kwargs)
            except Exception:
                lookups.settle_failure(lookup)
                raise
            if response is None:
                lookups.settle_failure(lookup)
            return response
        with _running(None):  # whatever loads calls is not part of this lookup
            return _guarded(wrapped, args, kwargs, lookup)


@deciding("pip_cache_guard.hook.lookups")
def _judge_prepared(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    from pip_cache_guard.hook import body_digests, lookups  # late: see hook.LATE_MODULES

    lookup: Lookup | None = getattr(_slot, "loading", None)
    if lookup is None:
        return wrapped(*args, **kwargs)
    lookups.judge_prepared(lookup, args[1] if len(args) > 1 else kwargs.get("cached"))
    response = wrapped(*args, **kwargs)
    if lookup.expectation is not None:
        body_digests.watch(response, lookup.expectation)
    return response


def _record_stored_bodies(controller: type, serializer: type, msgpack: Any) -> None:
    """Have ``Serializer.dumps(self, request, response, body=None)`` (every pip 21.3 - 26.3) add
    the guard's record of the body it stores (``hook.body_digests``), which
    ``CacheController._cache_set`` (pip 23.2+) hands to the cache apart from the metadata."""
    if not has_parameters(serializer, "dumps", ["self", "request", "response", "body"]):
        return

    def pack(value: Any) -> bytes:
        return bytes(msgpack.dumps(value, use_bin_type=True))

    @deciding("pip_cache_guard.hook.body_digests")
    def recording_dumps(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        from pip_cache_guard.hook import body_digests  # late: see hook.LATE_MODULES

        blob = wrapped(*args, **kwargs)
        response = args[1] if len(args) > 1 else kwargs.get("response")
        body = args[2] if len(args) > 2 else kwargs.get("body")
        return body_digests.with_record(blob, response, body, pack) or blob

    wrap_once(serializer, "dumps", recording_dumps)
    if has_parameters(
        controller, "_cache_set", ["self", "cache_url", "request", "response", "body"]
    ):
        wrap_once(controller, "_cache_set", _storing_apart)


@deciding("pip_cache_guard.hook.body_digests")
def _storing_apart(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    from pip_cache_guard.hook import body_digests  # late: see hook.LATE_MODULES

    with body_digests.storing_apart(args[3] if len(args) > 3 else kwargs.get("body")):
        return wrapped(*args, **kwargs)


def _load_wrapper(unpack: Unpack, reader: Callable[[], Reader], pips_own: bool) -> Wrapper:
    @deciding("pip_cache_guard.hook.lookups")
    def guarded_load_from_cache(
        wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any
    ) -> Any:
        from pip_cache_guard.hook import lookups  # late: see hook.LATE_MODULES

        request = args[0] if args else kwargs.get("request")
        lookup = lookups.Lookup(
            instance,
            request,
            unpack,
            key=lambda: str(request.url),
            reader=reader(),
            watches_bodies=pips_own,
        )
        lookups.note_entry(lookup)
        with _running(lookup):
            return _guarded(wrapped, args, kwargs, lookup)

    return guarded_load_from_cache


def _legacy_lookup_wrapper(unpack: Unpack, reader: Callable[[], Reader], pips_own: bool) -> Wrapper:
    @deciding("pip_cache_guard.hook.lookups")
    def guarded_lookup(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        from pip_cache_guard.hook import lookups  # late: see hook.LATE_MODULES

        request = args[0] if args else kwargs.get("request")
        lookup = lookups.Lookup(
            instance,
            request,
            unpack,
            key=lambda: str(instance.cache_url(request.url)),
            decide_in_loads=True,
            reader=reader(),
            watches_bodies=pips_own,
        )
        # As in 0.13+: without this, a pip (or a thread) deleting what it judged would claim,
        # for a moment, the fresh file stored since, and a concurrent reader miss it.
        lookups.note_entry(lookup)
        with _running(lookup):
            return wrapped(*args, **kwargs)

    return guarded_lookup


def _guarded(wrapped: Callable[..., Any], args: Any, kwargs: Any, lookup: Lookup) -> Any:
    """Call a loader; turn a proven-damaged entry into a miss, leave everything else as it was."""
    from pip_cache_guard.hook import lookups  # late: see hook.LATE_MODULES

    lookups.note_cache_dir(lookup)
    try:
        response = wrapped(*args, **kwargs)
    except Exception:
        if lookups.settle_failure(lookup):
            return None  # the entry was damaged: a miss makes pip download afresh
        raise
    if response is None:
        lookups.settle_failure(lookup)
    elif lookups.settle_hit(lookup, response):
        return None
    return response


class _HandledEntryFilter(logging.Filter):
    """Drops pip's "deserialization failed" warning for an entry this lookup's guard handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            if record.msg != PIP_WARNING:
                return True
            lookup: Lookup | None = getattr(_slot, "lookup", None)
            return lookup is None or not lookup.handled or _pip_is_verbose()
        except Exception:
            return True


def _fold_warning(module: ModuleType) -> None:
    logger = getattr(module, "logger", None)
    if isinstance(logger, logging.Logger) and not any(
        isinstance(existing, _HandledEntryFilter) for existing in logger.filters
    ):
        logger.addFilter(_HandledEntryFilter())


def _pip_is_verbose() -> bool:
    """Whether pip runs with ``-v``: the verbosity pip itself computed (``PIP_RUN.verbosity``)."""
    return (PIP_RUN.verbosity or 0) > 0
