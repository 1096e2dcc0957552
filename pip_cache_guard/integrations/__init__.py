"""Integrations: one module per kind of module the guard patches (``_import_hook.INTEGRATIONS``).

Each has ``apply(module)``, chooses its patch points by what the module has (never by version
string), records what it did in ``hook.STATE.patch_points`` and leaves an unknown shape alone. The
decisions (what is damage, what to delete, what to record) stay in ``hook``, ``diagnose`` and
``entries``. The helpers here are shared by every integration.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import threading
import types
from typing import Any, Callable


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

# Set on the owner (a class or a module) of each attribute wrapped: name -> the wrapper put there.
# A second offer of the same object (a module imported again under a second name, a second
# integration) finds its wrapper still in place and never wraps it twice, while
# ``importlib.reload`` (new classes; a module's functions bound anew in the same namespace) is
# wrapped again.
_WRAPPED_MARK = "_pip_cache_guard_wrapped"


def has_parameters(owner: Any, name: str, leading: list[str], exact: bool = False) -> bool:
    """Whether ``owner.name`` is a function whose parameters start with (or are) ``leading``."""
    method = getattr(owner, name, None)
    if not callable(method):
        return False
    try:
        parameters = list(inspect.signature(method).parameters)
    except (TypeError, ValueError):
        return False
    return (parameters if exact else parameters[: len(leading)]) == leading


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
