"""The slow half of the startup hook: runs only once a watched module is being imported.

The finder (``pip_cache_guard.find_spec``) hands every import whose name ends in one of
``WATCHED_TAILS`` to ``guarded_spec`` (unless the kill switch is set), which finds the real module
through the other finders and wraps its loader, so that the module is handed to its integration
right after it has executed. Nothing may escape from here: an error inside an import hook would
break the very import of pip it watches. Still stdlib only: wrapt is imported by the
integrations, after this.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
from typing import TYPE_CHECKING, Any

from pip_cache_guard import FINDER_MARK, WATCHED_TAILS
from pip_cache_guard.switches import is_disabled, report_internal_error

if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType

# The table of watched modules: name tail -> the integration that patches such a module. Each
# integration module has ``apply(module)``, which feature-detects what it patches and says what it
# patched (or "unsupported: ..."), recorded in ``PIP_RUN.patch_points`` (which ``doctor`` shows);
# see each module for the pips it knows.
INTEGRATIONS: dict[str, str] = {
    "cachecontrol.controller": "pip_cache_guard.integrations.controller",
    "pip._internal.cli.base_command": "pip_cache_guard.integrations.command",
    "pip._internal.commands.install": "pip_cache_guard.integrations.install",
    "pip._internal.network.download": "pip_cache_guard.integrations.download",
    "pip._internal.utils.hashes": "pip_cache_guard.integrations.hashes",
    "pip._internal.distributions.wheel": "pip_cache_guard.integrations.wheel_metadata",
    "pip._internal.req.req_install": "pip_cache_guard.integrations.req_install",
    "pip._internal.utils.unpacking": "pip_cache_guard.integrations.unpacking",
    "pip._internal.cache": "pip_cache_guard.integrations.wheel_cache",
    "pip._internal.index.collector": "pip_cache_guard.integrations.index_pages",
    "pip._internal.index.package_finder": "pip_cache_guard.integrations.index_pages",
    "pip._internal.commands.cache": "pip_cache_guard.integrations.cache_command",
    "pip._internal.utils.subprocess": "pip_cache_guard.integrations.pip_subprocess",
}
assert set(INTEGRATIONS) == set(WATCHED_TAILS)
# The third-party modules the guard imports inside pip (the patching layer; the history's
# platform directories). See ``reach_dependencies``.
DEPENDENCIES = ("wrapt", "platformdirs")


class PipRun:
    """What the integrations learn about this process's pip before ``hook`` is needed: what they
    patched (``doctor`` shows it) and the verbosity pip computed (the exit summary follows it).
    Here, not in ``integrations``, so that ``hook`` and ``doctor`` read it without wrapt."""

    def __init__(self) -> None:
        self.patch_points: dict[str, str] = {}  # by module name
        self.verbosity: int | None = None  # ``-v`` minus ``-q``, once pip's command started
        self.registered_at_exit = False

    def pip_version(self) -> str | None:
        """The version of the pip whose modules were patched: pip's own (``pip._vendor...``,
        ``pip._internal...``) or a vendored one (``pipenv.patched.pip._vendor...``); None for
        standalone CacheControl (Poetry), which has none."""
        for name in self.patch_points:
            for marker in ("._vendor.", "._internal."):
                pip_package, found, _ = name.partition(marker)
                if found:
                    return getattr(sys.modules.get(pip_package), "__version__", None)
        return None


PIP_RUN = PipRun()


def integration_for(fullname: str) -> str | None:
    """The integration module for ``fullname``, if a watched tail ends it at a dot boundary."""
    for tail, integration in INTEGRATIONS.items():
        if fullname == tail or fullname.endswith("." + tail):
            return integration
    return None


def guarded_spec(
    fullname: str, path: Sequence[str] | None, target: ModuleType | None
) -> ModuleSpec | None:
    """Ask the finders after ours for the real spec and wrap its loader; None if anything fails."""
    try:
        if integration_for(fullname) is None:
            return None
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            if getattr(finder, FINDER_MARK, False) or find_spec is None:
                continue
            spec: ModuleSpec | None = find_spec(fullname, path, target)
            if spec is None:
                continue
            if spec.loader is not None and (
                hasattr(spec.loader, "exec_module") or hasattr(spec.loader, "load_module")
            ):
                spec.loader = _PatchingLoader(spec.loader)  # type: ignore[assignment]
            return spec
    except Exception:
        report_internal_error(f"finding {fullname}")
    return None


def patch_loaded() -> None:
    """Patch watched modules that were imported before the hook was installed."""
    if is_disabled():
        return
    for name, module in list(sys.modules.items()):
        if module is not None and integration_for(name) is not None:
            _patch(module)


def reach_dependencies() -> None:
    """Import a dependency the path no longer shows from the directory the guard was loaded from.

    pip 26.2 runs the pip that installs an sdist's build dependencies inside the build
    environment, whose ``sitecustomize`` drops the venv's site-packages from ``sys.path`` after
    the startup file ran: the guard is loaded, wrapt and platformdirs are out of sight. Only that
    case pays for anything here: ``import_reaching`` calls this once an import has failed.
    """
    home = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for name in DEPENDENCIES:
        if name in sys.modules or importlib.util.find_spec(name) is not None:
            continue
        spec = importlib.machinery.PathFinder.find_spec(name, [home])
        if spec is None or spec.loader is None:
            continue  # not installed beside the guard either: that integration stays off
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise


def import_reaching(name: str) -> ModuleType:
    """Import one of the guard's modules; if that fails, once more after ``reach_dependencies``
    (a dependency may be out of sight)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        reach_dependencies()
        return importlib.import_module(name)


def _patch(module: ModuleType) -> None:
    """Hand a freshly executed module to its integration (which imports wrapt) and record what it
    patched, or why nothing."""
    try:
        integration = integration_for(module.__name__)
        if integration is not None:
            patched = import_reaching(integration).apply(module)
            PIP_RUN.patch_points[module.__name__] = patched
    except Exception:  # wrapt missing, a pip we do not know: pip goes on unguarded
        report_internal_error(f"patching {module.__name__}")


class _PatchingLoader:
    """Runs the real loader, then patches the module; looks like the real loader otherwise.

    ``importlib.reload`` finds the module's spec again through the finders, so a reloaded module
    passes through here (and is patched) once more.
    """

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
        exec_module = getattr(self._loader, "exec_module", None)
        if exec_module is None:  # Python 3.9's zipimporter (a zipapp pip): the legacy protocol
            sys.modules[module.__name__] = self._loader.load_module(module.__name__)
            module = sys.modules[module.__name__]
        else:
            exec_module(module)
        _patch(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)
