"""Integration with pip's ``call_subprocess``: pip's own subprocesses get the guard's spool.

Every subprocess pip starts itself, among them the second pip that installs an sdist's build
dependencies, goes through ``call_subprocess`` in ``pip._internal.utils.subprocess``, which every
pip since 21.3 (checked: 21.3 - 26.3) gives an ``extra_environ`` parameter, merged into the child's
environment. The wrapper adds ``spool.SPOOL_VARIABLE`` there, so that a guarded child pip hands what
it healed to this pip (``hook.children.spool_for_children``) and this pip's summary, report and
history tell it. This process's own environment is left as it was. The module is patched right after
it executed, before pip's modules bind ``call_subprocess`` by name.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Callable

from pip_cache_guard.integrations import (
    deciding,
    parameter_names,
    sum_up_at_exit,
    wrap_once,
)

FUNCTION = "call_subprocess"
PARAMETER = "extra_environ"


def apply(module: ModuleType) -> str:
    """Wrap one ``pip._internal.utils.subprocess.call_subprocess``, if it has ``extra_environ``."""
    function = getattr(module, FUNCTION, None)
    parameters = (parameter_names(function) if callable(function) else None) or []
    if PARAMETER not in parameters:
        return f"unsupported: no {FUNCTION}({PARAMETER}=...)"
    wrap_once(module, FUNCTION, _spool_wrapper(parameters.index(PARAMETER)))
    sum_up_at_exit()  # the children's events are this pip's to tell
    return f"{FUNCTION} (child pips report to this one)"


def _spool_wrapper(position: int) -> Callable[..., Any]:
    @deciding("pip_cache_guard.hook.children")
    def with_spool(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        from pip_cache_guard import spool  # late: see hook.LATE_MODULES
        from pip_cache_guard.hook import children

        path = children.spool_for_children() if len(args) <= position else None
        if path is not None:
            extra = dict(kwargs.get(PARAMETER) or {})
            extra.setdefault(spool.SPOOL_VARIABLE, path)
            kwargs = {**kwargs, PARAMETER: extra}
        return wrapped(*args, **kwargs)

    return with_spool
