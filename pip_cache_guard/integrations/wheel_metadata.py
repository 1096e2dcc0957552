"""Integration with pip's wheel distributions (``pip._internal.distributions.wheel``): a cached
wheel whose metadata cannot be read is evicted and fetched once more by pip's downloader.

``WheelDistribution.get_metadata_distribution(self)`` (every pip 21.3 - 26.3) reads the METADATA
of the downloaded wheel at ``self.req.local_file_path``, during resolution, for ``download``,
``install`` and ``wheel`` alike. Without a hash to check, this is where a damaged central
directory or METADATA member shows (bad CRC, broken zip, ``InvalidWheel``). A wheel that is not
from the cache, or fails again after a fresh download, raises pip's own error. pip has hashed the
file for its report just before (``download_info``): a wheel fetched again gets the fresh file's.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Callable

from pip_cache_guard.integrations import deciding, has_parameters, wrap_once
from pip_cache_guard.integrations.download import call_healing_unreadable

METHOD = "get_metadata_distribution"


def apply(module: ModuleType) -> str:
    """Wrap ``WheelDistribution.get_metadata_distribution``, if the module has that shape."""
    distribution = getattr(module, "WheelDistribution", None)
    if not has_parameters(distribution, METHOD, ["self"], exact=True):
        return "unsupported: unknown WheelDistribution"
    wrap_once(distribution, METHOD, _read_metadata)
    return f"WheelDistribution.{METHOD}"


@deciding("pip_cache_guard.hook.rejected_files")
def _read_metadata(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    from pip_cache_guard.hook import rejected_files  # late: see hook.LATE_MODULES

    req = getattr(instance, "req", None)
    path = getattr(req, "local_file_path", None)
    result = call_healing_unreadable(wrapped, args, kwargs, path)
    if path is not None:
        rejected_files.correct_noted_hash(req, path)
    return result
