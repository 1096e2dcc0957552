"""Integration with pip's archive unpacking (``pip._internal.utils.unpacking``): a cached sdist
whose archive cannot be unpacked is evicted, fetched once more by pip's downloader, unpacked again.

``unpack_file(filename, location, ...)`` (every pip 21.3 - 26.3) unpacks a downloaded sdist (or
any archive) into its build directory; a damaged gzip stream or tar header shows here. pip binds
the function into other modules with ``from ... import unpack_file`` (``operations.prepare``, and
``req.req_install`` from 24.0); those imports run after this module was patched, so they bind
the wrapper. Unpacking again writes every member anew over what the failed attempt left.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Callable

from pip_cache_guard.integrations import deciding, has_parameters, wrap_once
from pip_cache_guard.integrations.download import call_healing_unreadable

FUNCTION = "unpack_file"


def apply(module: ModuleType) -> str:
    """Wrap ``unpack_file`` of one ``utils.unpacking`` module, if it has that shape."""
    if not has_parameters(module, FUNCTION, ["filename", "location"]):
        return "unsupported: unknown unpack_file"
    wrap_once(module, FUNCTION, _unpack)
    return FUNCTION


@deciding("pip_cache_guard.hook.rejected_files")
def _unpack(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    path = args[0] if args else kwargs.get("filename")
    return call_healing_unreadable(wrapped, args, kwargs, path)
