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

# Set on a class (or module) attribute's owner for each name wrapped, so that a second offer of
# the same object (a module imported again under a second name, a second integration) never wraps
# it twice, while a reloaded module's new classes are wrapped again.
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
    """Whether ``owner.name`` was already wrapped by the guard."""
    return name in vars(owner).get(_WRAPPED_MARK, ())


def wrap_once(owner: Any, name: str, wrapper: Wrapper) -> bool:
    """Wrap ``owner.name`` with ``wrapper`` unless the guard already did; True if it wrapped."""
    if is_wrapped(owner, name):
        return False
    wrapt.wrap_function_wrapper(owner, name, wrapper)
    marks = frozenset(vars(owner).get(_WRAPPED_MARK, ())) | {name}
    setattr(owner, _WRAPPED_MARK, marks)
    return True
