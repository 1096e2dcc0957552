"""Startup bootstrap: waits, at no cost, for a CacheControl controller module to be imported.

This module runs in EVERY Python process of the environment (``pip_cache_guard.pth``), so it
imports nothing but ``os`` and ``sys`` (already loaded by site.py) and does nothing but put one
small finder in ``sys.meta_path``. Importing wrapt here would make ``python -c pass`` several
times slower.

Nothing may escape from here: site.py prints a traceback for a failing ``.pth`` line, and an error
inside an import hook would break the very import of pip it watches.

No ``from __future__ import annotations`` either: that statement imports a real module at run time,
so the annotations below are written as strings.
"""

import os
import sys

TYPE_CHECKING = False  # typing itself costs milliseconds at every start; mypy knows this name
if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType
    from typing import Any

KILL_SWITCH = "PIP_CACHE_GUARD"
DEBUG_SWITCH = "PIP_CACHE_GUARD_DEBUG"
_OFF_VALUES = ("0", "off", "false", "no")

# The controller modules whose loader we guard: pip's vendored copy and standalone CacheControl.
WATCHED_MODULES = ("pip._vendor.cachecontrol.controller", "cachecontrol.controller")

# Marks our finder so that a second install() (the .pth runs twice in venvs before 3.15) finds it,
# even if this module was somehow loaded twice under different names.
_FINDER_MARK = "_pip_cache_guard_finder"


def is_disabled(environ: "Any" = None) -> bool:
    """Whether the kill switch is set (``PIP_CACHE_GUARD=0``, ``off``, ``false`` or ``no``)."""
    value = (os.environ if environ is None else environ).get(KILL_SWITCH, "")
    return value.strip().lower() in _OFF_VALUES


def debug_enabled() -> bool:
    """Whether internal errors should be shown (``PIP_CACHE_GUARD_DEBUG=1``)."""
    return os.environ.get(DEBUG_SWITCH, "").strip().lower() not in ("", *_OFF_VALUES)


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


def _patch(module: "ModuleType") -> None:
    """Hand a freshly executed controller module to the patcher (which imports wrapt)."""
    try:
        from pip_cache_guard import patch

        patch.apply(module)
    except Exception:  # wrapt missing, a pip we do not know: pip goes on unguarded
        report_internal_error(f"patching {module.__name__}")


class _PatchingLoader:
    """Runs the real loader, then patches the module; looks like the real loader otherwise."""

    def __init__(self, loader: "Any") -> None:
        self._loader = loader

    def create_module(self, spec: "ModuleSpec") -> "ModuleType | None":
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: "ModuleType") -> None:
        # Give the module its real loader back before anything can look at it.
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        _patch(module)

    def __getattr__(self, name: str) -> "Any":
        return getattr(self._loader, name)


class GuardFinder:
    """A meta-path finder that answers ``None`` at once for every module but the watched ones."""

    _pip_cache_guard_finder = True

    def find_spec(
        self,
        fullname: str,
        path: "Sequence[str] | None" = None,
        target: "ModuleType | None" = None,
    ) -> "ModuleSpec | None":
        if fullname not in WATCHED_MODULES:
            return None
        try:
            return self._guarded_spec(fullname, path, target)
        except Exception:
            report_internal_error(f"finding {fullname}")
            return None

    def _guarded_spec(
        self, fullname: str, path: "Sequence[str] | None", target: "ModuleType | None"
    ) -> "ModuleSpec | None":
        """Ask the finders after us for the real spec and wrap its loader."""
        for finder in sys.meta_path:
            if getattr(finder, _FINDER_MARK, False):
                continue
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is None:
                continue
            if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                spec.loader = _PatchingLoader(spec.loader)
            return spec  # type: ignore[no-any-return]
        return None


def install() -> None:
    """Entry point of the startup hook: idempotent, cheap, and never raises."""
    try:
        if is_disabled():
            return
        if any(getattr(finder, _FINDER_MARK, False) for finder in sys.meta_path):
            return
        sys.meta_path.insert(0, GuardFinder())
        # Rare: the controller was imported before the hook ran (e.g. install() called by hand).
        for name in WATCHED_MODULES:
            module = sys.modules.get(name)
            if module is not None:
                _patch(module)
    except Exception:
        report_internal_error("install")
