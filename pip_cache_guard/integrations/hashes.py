"""Integration with pip's hash checks (``pip._internal.utils.hashes``): a cached file that fails
its hash is evicted and fetched once more by pip's own downloader, then checked again.

``Hashes.check_against_path(self, path)`` (every pip 21.3 - 26.3) is where pip checks a downloaded
file, on the direct path (``get_http_url``, PEP 658 ``.metadata`` files too) and on the batch path
(``_prepare_linked_requirement``, for wheels whose metadata came first). It raises ``HashMismatch``
(``.gots``: the digests pip computed), which the module imports. On that error,
``hook.rejected_files.evict_rejected`` decides; at most one more download per file, and a file that
fails again raises pip's own error. pip 26.1+ blocks imports once an installation starts: everything
this needs is imported with the module.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Callable

from pip_cache_guard.integrations import Wrapper, deciding, has_parameters, wrap_once

PROBLEM = "the cached file fails pip's hash check"


def apply(module: ModuleType) -> str:
    """Wrap ``Hashes.check_against_path`` of one ``utils.hashes`` module, if it has that shape."""
    hashes = getattr(module, "Hashes", None)
    mismatch = getattr(module, "HashMismatch", None)
    if not isinstance(mismatch, type) or not has_parameters(
        hashes, "check_against_path", ["self", "path"], exact=True
    ):
        return "unsupported: unknown Hashes"
    wrap_once(hashes, "check_against_path", _check_wrapper(mismatch))
    return "Hashes.check_against_path"


def _check_wrapper(mismatch: type[BaseException]) -> Wrapper:
    @deciding("pip_cache_guard.hook.rejected_files")
    def check_against_path(
        wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any
    ) -> Any:
        from pip_cache_guard.hook import rejected_files  # late: see hook.LATE_MODULES
        from pip_cache_guard.integrations.download import fetch_again  # late: as hook

        try:
            return wrapped(*args, **kwargs)
        except mismatch as exc:
            path = args[0] if args else kwargs.get("path")
            refetch = rejected_files.evict_rejected(str(path), getattr(exc, "gots", None), PROBLEM)
            if refetch is None:
                raise
        fetch_again(refetch)
        try:
            result = wrapped(*args, **kwargs)
        except mismatch:
            rejected_files.settle_refetch(refetch, "rejected")
            raise
        rejected_files.settle_refetch(refetch, "refetched")
        return result

    return check_against_path
