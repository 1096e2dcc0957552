"""Integration with pip's install command (pip 26.1+): import what the guard may need later.

pip 26.1 and later block every import once an installation starts (``_prevent_further_imports``
in ``pip/_internal/commands/install.py``: 26.1 and 26.2 print a DEPRECATION line for each late
import, 26.3 refuses it), and tell hook authors to import what they need before. The guard's exit
work (the history, platformdirs) is imported lazily, so this wraps ``_prevent_further_imports`` to
import ``hook.LATE_MODULES`` first: only runs that really start an installation pay for them.
pip before 26.1 has no such function, and nothing is patched.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Callable

from pip_cache_guard.integrations import deciding, wrap_once

BARRIER = "_prevent_further_imports"


def apply(module: ModuleType) -> str:
    """Wrap the import barrier of one ``pip._internal.commands.install`` module, if it has one."""
    if not callable(getattr(module, BARRIER, None)):
        return "nothing to patch (no import barrier before pip 26.1)"
    wrap_once(module, BARRIER, _import_first)
    return BARRIER


@deciding("pip_cache_guard.hook")  # imports hook itself first
def _import_first(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    from pip_cache_guard import hook  # late: see hook.LATE_MODULES

    hook.import_late_modules()
    return wrapped(*args, **kwargs)
