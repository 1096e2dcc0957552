"""The slow half of the startup hook: runs only once a CacheControl controller is being imported.

``GuardFinder`` (in ``__init__``) hands the watched import to ``guarded_spec``, which finds the real
module through the other finders and wraps its loader, so that the module is patched right after it
has executed. Nothing may escape from here: an error inside an import hook would break the very
import of pip it watches. Still stdlib only: wrapt is imported by ``patch``, after this.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from pip_cache_guard import FINDER_MARK, KILL_SWITCH, OFF_VALUES, WATCHED_MODULES

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType

DEBUG_SWITCH = "PIP_CACHE_GUARD_DEBUG"


def is_disabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the kill switch is set (``PIP_CACHE_GUARD=0``, ``off``, ``false`` or ``no``)."""
    value = (os.environ if environ is None else environ).get(KILL_SWITCH, "")
    return value.strip().lower() in OFF_VALUES


def debug_enabled() -> bool:
    """Whether internal errors should be shown (``PIP_CACHE_GUARD_DEBUG=1``)."""
    return os.environ.get(DEBUG_SWITCH, "").strip().lower() not in ("", *OFF_VALUES)


def report_internal_error(where: str) -> None:
    """Print the current exception to stderr under the debug switch; stay silent otherwise."""
    if not debug_enabled():
        return
    try:
        import traceback

        sys.stderr.write(f"pip-cache-guard (debug): internal error in {where}:\n")
        traceback.print_exc(file=sys.stderr)
    except Exception:  # stderr closed or broken: nothing more to do
        pass


def guarded_spec(
    fullname: str, path: Sequence[str] | None, target: ModuleType | None
) -> ModuleSpec | None:
    """Ask the finders after ours for the real spec and wrap its loader; None if anything fails."""
    try:
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            if getattr(finder, FINDER_MARK, False) or find_spec is None:
                continue
            spec: ModuleSpec | None = find_spec(fullname, path, target)
            if spec is None:
                continue
            if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                spec.loader = _PatchingLoader(spec.loader)  # type: ignore[assignment]
            return spec
    except Exception:
        report_internal_error(f"finding {fullname}")
    return None


def patch_loaded() -> None:
    """Patch watched modules that were imported before the hook was installed."""
    for name in WATCHED_MODULES:
        module = sys.modules.get(name)
        if module is not None:
            _patch(module)


def _patch(module: ModuleType) -> None:
    """Hand a freshly executed controller module to the patcher (which imports wrapt)."""
    try:
        from pip_cache_guard import patch

        patch.apply(module)
    except Exception:  # wrapt missing, a pip we do not know: pip goes on unguarded
        report_internal_error(f"patching {module.__name__}")


class _PatchingLoader:
    """Runs the real loader, then patches the module; looks like the real loader otherwise."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: ModuleType) -> None:
        # Give the module its real loader back before anything can look at it.
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        _patch(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)
