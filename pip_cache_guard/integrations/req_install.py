"""Integration with pip's requirement installer (``pip._internal.req.req_install``): a cached
wheel that cannot be unpacked while installing is evicted, fetched once more, installed again.

``InstallRequirement.install(self, ...)`` (every pip 21.3 - 26.3) installs the wheel at
``self.local_file_path``; a byte rotted in a member's data shows only here, when that member is
extracted (``BadZipFile: Bad CRC-32``). pip writes each file anew (it unlinks what is there), so
installing again over a half-installed wheel is what pip would do on the next run anyway. pip
26.1+ blocks imports once installation starts: the re-download uses only what pip's first
download and the guard already imported.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Callable

from pip_cache_guard.integrations import deciding, has_parameters, wrap_once
from pip_cache_guard.integrations.download import call_healing_unreadable


def apply(module: ModuleType) -> str:
    """Wrap ``InstallRequirement.install``, if the module has that shape."""
    requirement = getattr(module, "InstallRequirement", None)
    if not has_parameters(requirement, "install", ["self"]):
        return "unsupported: unknown InstallRequirement"
    wrap_once(requirement, "install", _install)
    return "InstallRequirement.install"


@deciding("pip_cache_guard.hook.rejected_files")
def _install(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    path = getattr(instance, "local_file_path", None)
    return call_healing_unreadable(wrapped, args, kwargs, path)
