"""pip-cache-guard: catches damaged entries in pip's HTTP cache as pip reads them.

This module is the cheap half of the startup hook: ``pip_cache_guard.pth`` imports it in EVERY
Python process of the environment, and importing it runs ``install()``. The module is itself the
meta-path finder: ``sys.meta_path`` takes any object with ``find_spec``, and creating a class
would cost about 10 µs at every start. It imports nothing but ``os`` and ``sys`` (site.py has
loaded both; even ``from __future__`` would be a real import, so annotations are strings) and
reads no environment variable at startup: the kill switch is read when a watched module is being
imported, and only then is the rest of the guard imported. Measured cost and why it cannot get
much lower: ``benchmarks/startup.py`` and ``benchmarks/README.md``.
"""

import os
import sys

TYPE_CHECKING = False  # the typing module costs milliseconds at every start; mypy knows this name
if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType

__version__ = "0.1.0"

KILL_SWITCH = "PIP_CACHE_GUARD"
OFF_VALUES = ("0", "off", "false", "no")
# The modules the guard patches once they are imported, by the tail of their name, so that vendored
# copies match too (pip's ``pip._vendor.cachecontrol.controller``, standalone
# ``cachecontrol.controller``, pipenv's ``pipenv.patched.pip...``). One ``str.endswith``
# with this tuple is the finder's whole fast path; ``_import_hook.INTEGRATIONS`` maps each tail to
# the integration module that patches it, and checks that the tail starts at a dot.
WATCHED_TAILS = (
    "cachecontrol.controller",
    "pip._internal.cli.base_command",
    "pip._internal.commands.install",
    "pip._internal.network.download",
    "pip._internal.utils.hashes",
    "pip._internal.distributions.wheel",
    "pip._internal.req.req_install",
    "pip._internal.utils.unpacking",
    "pip._internal.cache",
    "pip._internal.index.collector",
    "pip._internal.index.package_finder",
    "pip._internal.commands.cache",
    "pip._internal.utils.subprocess",
)
# Marks our finder, so that install() never adds a second one (venvs before Python 3.15 run every
# .pth twice), even if this module were loaded twice under different names.
FINDER_MARK = "_pip_cache_guard_finder"
_pip_cache_guard_finder = True


def find_spec(
    fullname: str,
    path: "Sequence[str] | None" = None,
    target: "ModuleType | None" = None,
) -> "ModuleSpec | None":
    """The hottest code we ship: consulted for every import, it returns at once for the others."""
    if not fullname.endswith(WATCHED_TAILS):
        return None
    try:
        if os.environ.get(KILL_SWITCH, "").strip().lower() in OFF_VALUES:
            return None
        from pip_cache_guard import _import_hook

        return _import_hook.guarded_spec(fullname, path, target)
    except Exception:  # a half-removed guard: the import goes on unguarded
        return None


def install() -> None:
    """The startup hook's entry point (run by importing this module): idempotent, never raises."""
    try:
        if any(getattr(finder, FINDER_MARK, False) for finder in sys.meta_path):
            return
        sys.meta_path.insert(0, sys.modules[__name__])
        if "pip" in sys.modules or "cachecontrol" in sys.modules or "pipenv" in sys.modules:
            from pip_cache_guard import _import_hook  # they were imported before the hook

            _import_hook.patch_loaded()
    except Exception:
        pass


install()
