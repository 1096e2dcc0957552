"""``doctor``: is the guard really watching pip in this interpreter, and is the cache healthy?

"Installed" means a startup file this interpreter's site.py acts on sits in one of its site
directories (``hook_files`` names that file, not merely the one we ship); "active"
means this very process got the finder from it and a CacheControl controller module present here
(pip's, standalone CacheControl's as Poetry and pip-audit use it, pipenv's vendored pip's) was
actually patched when imported (the kill switch, a missing wrapt or an unknown generation all say
no). So ``doctor`` run from a tool's own environment (Poetry's, a pipx venv) answers for that tool.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import shutil
import site
import sys
from dataclasses import dataclass, field

from pip_cache_guard import FINDER_MARK, KILL_SWITCH, history, switches
from pip_cache_guard._import_hook import INTEGRATIONS
from pip_cache_guard.locate import (
    CacheLocation,
    ToolCache,
    installed_pip_version,
    locate,
    tool_caches,
)

HOOK_FILE = "pip_cache_guard.pth"
# PEP 829: from 3.15 site.py runs a .start file's entry point instead of the import lines of the
# .pth of the same stem (we ship none, an older install or a hand may leave one), and from 3.18 it
# ignores .pth import lines altogether.
START_FILE = "pip_cache_guard.start"
START_FILES_RUN = (3, 15)
PTH_IMPORTS_IGNORED = (3, 18)
PIP_CONTROLLER = "pip._vendor.cachecontrol.controller"
# The controllers a guarded tool may import here; each is tried when its top package is present.
CONTROLLERS = (
    PIP_CONTROLLER,
    "cachecontrol.controller",
    "pipenv.patched.pip._vendor.cachecontrol.controller",
)
# pip's own modules the guard patches to heal in the same run (cached bodies, the import barrier).
PIP_HEALING_MODULES = tuple(tail for tail in INTEGRATIONS if tail.startswith("pip._internal."))
LOW_FREE_BYTES = 1024**3  # below 1 GiB free, pip's cache writes start failing halfway
LOW_FREE_FRACTION = 0.05
RECENT_INCIDENTS = 5


@dataclass
class Health:
    """Facts about the hook, pip and the cache, each with the reason when something is off."""

    python: str
    hook_installed: bool
    hook_files: list[str]
    hook_active: bool
    inactive_reason: str | None
    pip_version: str | None
    patch_point: str | None
    patch_points: dict[str, str]
    cache: CacheLocation
    cache_exists: bool
    cache_bytes: int
    free_bytes: int | None
    low_disk: bool
    history_file: str
    history_error: str | None = None  # why the history cannot be read
    tool_caches: list[tuple[ToolCache, bool]] = field(default_factory=list)
    recent_incidents: list[history.Incident] = field(default_factory=list)
    # module -> what was patched in it ("unsupported: ..." when its shape is unknown)
    healing_points: dict[str, str] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return self.hook_active and not self.low_disk and self.history_error is None


def examine(cache_dir: str | None = None) -> Health:
    """Gather every fact ``doctor`` reports; importing pip's controller here exercises the hook."""
    hook_files = _hook_files()
    patch_points, inactive_reason = _hook_status()
    location = locate(cache_dir)
    exists = os.path.isdir(location.root)
    free_bytes, total_bytes = _disk_space(location.root)
    history_file = history.history_path()
    try:
        incidents, history_error = history.read(history_file)[:RECENT_INCIDENTS], None
    except OSError as exc:  # one line of the report, not the end of it
        incidents, history_error = [], f"cannot be read ({exc.strerror or exc})"
    low_disk = free_bytes is not None and (
        free_bytes < LOW_FREE_BYTES
        or (total_bytes is not None and free_bytes < total_bytes * LOW_FREE_FRACTION)
    )
    return Health(
        python=sys.executable,
        hook_installed=bool(hook_files),
        hook_files=hook_files,
        hook_active=inactive_reason is None,
        inactive_reason=inactive_reason,
        pip_version=installed_pip_version(),
        patch_point=patch_points.get(PIP_CONTROLLER) or next(iter(patch_points.values()), None),
        patch_points=patch_points,
        cache=location,
        cache_exists=exists,
        cache_bytes=_tree_size(location.root) if exists else 0,
        free_bytes=free_bytes,
        low_disk=low_disk,
        history_file=history_file,
        history_error=history_error,
        tool_caches=[(cache, os.path.isdir(cache.path)) for cache in tool_caches()],
        recent_incidents=incidents,
        healing_points=_healing_points() if inactive_reason is None else {},
    )


def _hook_files() -> list[str]:
    directories = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        directories.append(site.getusersitepackages())
    found = (startup_file(directory, sys.version_info[:2]) for directory in directories)
    return [path for path in dict.fromkeys(found) if path is not None]


def startup_file(directory: str, python: tuple[int, int]) -> str | None:
    """The guard's startup file in ``directory`` that site.py of Python ``python`` runs, if any."""
    start = os.path.join(directory, START_FILE)
    if python >= START_FILES_RUN and os.path.isfile(start):
        return start
    pth = os.path.join(directory, HOOK_FILE)
    if python < PTH_IMPORTS_IGNORED and os.path.isfile(pth):
        return pth
    return None


def _hook_status() -> tuple[dict[str, str], str | None]:
    """(patch point of each controller present, why the hook is inactive or None)."""
    if switches.is_disabled():
        return {}, f"{KILL_SWITCH}={os.environ[KILL_SWITCH]} (off)"
    if not any(getattr(finder, FINDER_MARK, False) for finder in sys.meta_path):
        return {}, "the startup hook did not run in this interpreter"
    present = [name for name in CONTROLLERS if _top_package_present(name)]
    if not present:
        return {}, "neither pip nor CacheControl is installed in this interpreter"
    failures = []
    for name in present:
        try:
            importlib.import_module(name)
        except Exception as exc:
            failures.append(f"{name} cannot be imported ({exc})")
    from pip_cache_guard._import_hook import PIP_RUN  # after the imports above, which patched

    points = {name: PIP_RUN.patch_points[name] for name in present if name in PIP_RUN.patch_points}
    if any(not point.startswith("unsupported") for point in points.values()):
        return points, None
    if points:
        point = next(iter(points.values()))
        return points, f"no controller here is a generation the guard knows ({point})"
    if failures:
        return points, "; ".join(failures)
    if importlib.util.find_spec("wrapt") is None:
        return points, "wrapt cannot be imported"
    return points, "patching failed (run with PIP_CACHE_GUARD_DEBUG=1)"


def _top_package_present(module: str) -> bool:
    try:
        return importlib.util.find_spec(module.partition(".")[0]) is not None
    except (ImportError, ValueError):
        return False


def _healing_points() -> dict[str, str]:
    """What the guard patched in each of pip's modules it heals through (imported here)."""
    from pip_cache_guard._import_hook import PIP_RUN

    if importlib.util.find_spec("pip") is None:
        return {}
    points = {}
    for name in PIP_HEALING_MODULES:
        try:
            importlib.import_module(name)
        except Exception as exc:
            points[name] = f"cannot be imported ({exc})"
            continue
        points[name] = PIP_RUN.patch_points.get(name, "not patched")
    return points


def _disk_space(path: str) -> tuple[int | None, int | None]:
    """Free and total bytes of the filesystem that holds (or would hold) ``path``."""
    probe = path
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            return None, None
        probe = parent
    try:
        usage = shutil.disk_usage(probe)
    except OSError:
        return None, None
    return usage.free, usage.total


def _tree_size(root: str) -> int:
    total = 0
    for directory, _subdirs, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):  # removed while we walk
                total += os.lstat(os.path.join(directory, name)).st_size
    return total
