"""Integrations: one module per kind of module the guard patches (``_import_hook.INTEGRATIONS``).

Each has ``apply(module)``, chooses its patch points by what the module has (never by version
string), records what it did in ``hook.STATE.patch_points`` and leaves an unknown shape alone. The
decisions (what is damage, what to delete, what to record) stay in ``hook``, ``diagnose`` and
``entries``. The helpers here are shared by every integration.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import wrapt

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
