"""Integrations: one module per kind of module the guard patches (``_import_hook.INTEGRATIONS``).

Each has ``apply(module)``, chooses its patch points by what the module has (never by version
string), says what it patched (``_import_hook`` records it) and leaves an unknown shape alone. The
decisions (what is damage, what to delete, what to record) stay in ``hook`` (one module a
concern), ``diagnose`` and ``entries``. The helpers here are shared by every integration.

Patching imports nothing of the guard but this package and ``switches``: ``hook`` (with ``diagnose``
and ``ledger``) and the module of one concern are imported by the first wrapper pip calls that needs
them (see ``deciding``), or by the exit handler when there is something to say, so that a pip run
that never gets there (``import pip._internal.network.session`` alone, a ``pip list``) never pays
for it. pip 26.1+ blocks imports once an installation starts: ``hook`` is one of
``hook.LATE_MODULES``, imported right before that.
"""

from __future__ import annotations

import atexit
import importlib
import inspect
import os
import sys
import threading
import types
from typing import Any, Callable

from pip_cache_guard._import_hook import PIP_RUN
from pip_cache_guard.switches import REPORT_VARIABLE, report_internal_error


class _AsyncioOnFirstUse(types.ModuleType):
    """What wrapt 2.x's ``import asyncio`` gets while the guard imports wrapt.

    wrapt imports asyncio (about 30 modules, ~8 ms) at import time but uses it only inside its
    async helpers, which the guard never calls. This stand-in is in ``sys.modules`` only for the
    duration of ``import wrapt`` (below); afterwards only wrapt holds it, and every
    attribute wrapt reads through it comes from the real asyncio, imported on first use by the
    ordinary import system (its own locks make that safe from any thread). Everyone else who
    imports asyncio gets the real module, as without the guard.
    """

    def __getattr__(self, name: str) -> Any:
        _withdraw(self)  # read during wrapt's own import: make way for the real one
        return getattr(importlib.import_module("asyncio"), name)


_stand_in_lock = threading.Lock()


def _withdraw(stand_in: types.ModuleType) -> None:
    """Take the stand-in out of ``sys.modules``, never a real asyncio that replaced it."""
    with _stand_in_lock:
        if sys.modules.get("asyncio") is stand_in:
            del sys.modules["asyncio"]


# ``import wrapt`` without importing asyncio, unless something already did.
_asyncio_stand_in = None
if "asyncio" not in sys.modules and "wrapt" not in sys.modules:
    _asyncio_stand_in = sys.modules["asyncio"] = _AsyncioOnFirstUse("asyncio")
try:
    import wrapt
finally:
    if _asyncio_stand_in is not None:
        _withdraw(_asyncio_stand_in)

Wrapper = Callable[[Callable[..., Any], Any, Any, Any], Any]

_HOOK = "pip_cache_guard.hook"


# Set on the owner (a class or a module) of each attribute wrapped: name -> the wrapper put there.
# A second offer of the same object (a module imported again under a second name, a second
# integration) finds its wrapper still in place and never wraps it twice, while
# ``importlib.reload`` (new classes; a module's functions bound anew in the same namespace) is
# wrapped again.
_WRAPPED_MARK = "_pip_cache_guard_wrapped"


def has_parameters(owner: Any, name: str, leading: list[str], exact: bool = False) -> bool:
    """Whether ``owner.name`` is a function whose parameters start with (or are) ``leading``."""
    method = getattr(owner, name, None)
    parameters = parameter_names(method) if callable(method) else None
    if parameters is None:
        return False
    return (parameters if exact else parameters[: len(leading)]) == leading


def parameter_names(function: Callable[..., Any]) -> list[str] | None:
    """The names of ``function``'s parameters, in ``inspect.signature``'s order; None if it has no
    signature. A plain function's are read from its code object: a few microseconds, where
    ``inspect.signature`` takes ten, for each of the dozen checks patching pip makes."""
    code = getattr(function, "__code__", None)
    if (
        type(function) is not types.FunctionType
        or code is None
        or hasattr(function, "__wrapped__")  # inspect follows these: a decorated function
        or hasattr(function, "__signature__")
    ):
        try:
            return list(inspect.signature(function).parameters)
        except (TypeError, ValueError):
            return None
    names, positional, keyword_only = code.co_varnames, code.co_argcount, code.co_kwonlyargcount
    end = positional + keyword_only
    star = names[end : end + 1] if code.co_flags & inspect.CO_VARARGS else ()
    end += len(star)
    double_star = names[end : end + 1] if code.co_flags & inspect.CO_VARKEYWORDS else ()
    return [
        *names[:positional],
        *star,
        *names[positional : positional + keyword_only],
        *double_star,
    ]


def is_wrapped(owner: Any, name: str) -> bool:
    """Whether ``owner.name`` is (still) the guard's wrapper."""
    wrapper = vars(owner).get(_WRAPPED_MARK, {}).get(name)
    return wrapper is not None and vars(owner).get(name) is wrapper


def wrap_once(owner: Any, name: str, wrapper: Wrapper) -> bool:
    """Wrap ``owner.name`` with ``wrapper`` unless the guard already did; True if it wrapped."""
    if is_wrapped(owner, name):
        return False
    wrapped = wrapt.wrap_function_wrapper(owner, name, wrapper)
    setattr(owner, _WRAPPED_MARK, {**vars(owner).get(_WRAPPED_MARK, {}), name: wrapped})
    return True


def deciding(module: str) -> Callable[[Wrapper], Wrapper]:
    """A wrapper that calls the decisions of ``module`` (``hook`` or one of its modules): imported
    at its first call, so that a run that never calls it never pays for it. If it cannot be
    imported (the guard removed under a running pip, a pip 26.1+ import barrier the guard did not
    see coming), pip's own call goes on alone."""

    def decorate(wrapper: Wrapper) -> Wrapper:
        def with_hook(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
            if module not in sys.modules:
                try:
                    importlib.import_module(module)  # late: see hook.LATE_MODULES
                except Exception:
                    report_internal_error(f"importing {module}")
                    return wrapped(*args, **kwargs)
            return wrapper(wrapped, instance, args, kwargs)

        return with_hook

    return decorate


def sum_up_at_exit() -> None:
    """Make sure the guard sums up when this process ends (once, however many integrations ask):
    every integration that can record an event calls this."""
    if not PIP_RUN.registered_at_exit:
        atexit.register(_sum_up)
        PIP_RUN.registered_at_exit = True


def _sum_up() -> None:
    """At exit: ``hook.summing_up.at_exit``. A run that never imported ``hook`` has recorded
    nothing, so there is nothing to say unless a report is asked for; such a run never imports
    it."""
    if _HOOK not in sys.modules and not os.environ.get(REPORT_VARIABLE):
        return
    try:
        from pip_cache_guard.hook import summing_up  # late: see hook.LATE_MODULES
    except Exception:
        report_internal_error("summing up at exit")
        return
    summing_up.at_exit()
