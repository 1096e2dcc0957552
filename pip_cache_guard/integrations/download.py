"""Integration with pip's downloader (``pip._internal.network.download``): which files came from
the cache, and how to have pip's own downloader fetch one of them once more.

pip says "Using cached" in one module function that sees both the response and the link; when
``resp.from_cache`` is set, the guard notes the file's name (pip's own
``_get_http_response_filename``) and the adapter that served it
(``hook.rejected_files.note_download``): a dict entry, no read of the file. That function returns
the body's chunks lazily, so no frame of the guard is on the stack while pip talks to the index (pip
prints a traceback for some network errors: it must not show the guard). Patch points, chosen by
what the module has:

- ``_prepare_download(resp, link, ...)`` (pip 21.3 - 25.1) or ``_log_download(resp, link, ...)``
  (pip 25.2+, called again for each resumed range, never from the cache), on the direct path and
  on the batch path (PEP 658 metadata first) alike;
- ``Downloader.__init__`` (every pip 21.3 - 26.3, whatever its parameters): the instance pip made
  is the one that fetches a file again, ``downloader(link, location)`` in every version.

A file written from a cached body that failed its digest (``hook.body_digests``) is evicted and
fetched once more where pip first reads it (``call_healing_unreadable``: a wheel's metadata, an
sdist's unpacking), not in the downloader: a wrapper around it would be on the stack, and in pip's
traceback, whenever the index fails.

A module without these shapes is left alone, and ``apply`` says so.
"""

from __future__ import annotations

import os
import zlib
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable

from pip_cache_guard.integrations import deciding, has_parameters, wrap_once

if TYPE_CHECKING:
    from pip_cache_guard.hook.rejected_files import Refetch

_REPORTERS = ("_log_download", "_prepare_download")
_NAMER = "_get_http_response_filename"
# What says an archive cannot be read: zlib's errors and a file that ends early, and by class name
# (so that gzip and tarfile need not be imported to recognise theirs) zipfile's, gzip's and
# tarfile's errors and pip's InvalidWheel (a wheel whose zip or metadata it cannot read).
_ARCHIVE_ERRORS = (zlib.error, EOFError)
_ARCHIVE_ERROR_NAMES = frozenset({"BadZipFile", "BadGzipFile", "TarError", "InvalidWheel"})
# A TarError that says the archive was read, and refused: tarfile's extraction filters (PEP 706)
# reject a member for what its (checksummed) header says, a link to an absolute path, say. pip
# reads every header before it extracts anything, so the archive is whole: no proof of damage.
_REFUSAL_NAMES = frozenset({"FilterError"})


def apply(module: ModuleType) -> str:
    """Patch one ``network.download`` module, if it has the shapes above."""
    reporter = next(
        (name for name in _REPORTERS if has_parameters(module, name, ["resp", "link"])), None
    )
    downloader = getattr(module, "Downloader", None)
    if (
        reporter is None
        or not has_parameters(module, _NAMER, ["resp", "link"], exact=True)
        or not has_parameters(downloader, "__call__", ["self", "link", "location"], exact=True)
        or not has_parameters(downloader, "__init__", ["self"])
    ):
        return "unsupported: unknown downloader"
    wrap_once(module, reporter, _reporter_wrapper(getattr(module, _NAMER)))
    wrap_once(downloader, "__init__", _remember_downloader)
    return f"{reporter}, Downloader.__init__"


def _reporter_wrapper(file_name: Callable[[Any, Any], str]) -> Callable[..., Any]:
    @deciding("pip_cache_guard.hook.rejected_files")
    def note_response(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        from pip_cache_guard.hook import rejected_files  # late: see hook.LATE_MODULES

        resp = args[0] if args else kwargs.get("resp")
        link = args[1] if len(args) > 1 else kwargs.get("link")
        rejected_files.note_download(resp, link, file_name)
        return wrapped(*args, **kwargs)

    return note_response


@deciding("pip_cache_guard.hook.rejected_files")
def _remember_downloader(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    from pip_cache_guard.hook import rejected_files  # late: see hook.LATE_MODULES

    result = wrapped(*args, **kwargs)
    rejected_files.note_downloader(instance)
    return result


def heal_mismatched(path: str) -> None:
    """If pip wrote ``path`` from a cached body that failed its digest, evict the entry and have
    pip's downloader fetch the file once more, to the same path (pip's errors pass unchanged)."""
    from pip_cache_guard.hook import rejected_files  # late: see hook.LATE_MODULES

    mismatched = rejected_files.evict_mismatched(path)
    if mismatched is None:
        return
    refetch, expected = mismatched
    fetch_again(refetch)
    rejected_files.settle_refetch(refetch, rejected_files.digest_outcome(refetch.path, expected))


def call_healing_unreadable(
    wrapped: Callable[..., Any], args: Any, kwargs: Any, path: str | None
) -> Any:
    """Call pip's ``wrapped``, which reads the archive at ``path``; if the archive cannot be read
    and came from the cache, evict it, have pip's downloader fetch it again, and call once more.
    A file whose cached body failed its digest is fetched again before pip reads it at all.
    For wrappers that are ``deciding``.
    """
    from pip_cache_guard.hook import rejected_files  # late: see hook.LATE_MODULES

    if path is not None:
        heal_mismatched(path)
    try:
        return wrapped(*args, **kwargs)
    except Exception as exc:
        problem = _unreadable(exc)
        if problem is None or path is None:
            raise
        refetch = rejected_files.evict_rejected(
            path, None, f"the cached file cannot be read ({problem})"
        )
        if refetch is None:
            raise
    fetch_again(refetch)
    try:
        result = wrapped(*args, **kwargs)
    except Exception as exc:
        rejected_files.settle_refetch(refetch, "rejected" if _unreadable(exc) else "refetched")
        raise
    rejected_files.settle_refetch(refetch, "refetched")
    return result


def _unreadable(exc: BaseException) -> str | None:
    """What says an archive could not be read, in ``exc`` or what caused it; None if nothing,
    or if it was read and refused (``_REFUSAL_NAMES``)."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return None
        names = {cls.__name__ for cls in type(seen).__mro__}
        if names & _REFUSAL_NAMES:
            return None
        if isinstance(seen, _ARCHIVE_ERRORS) or names & _ARCHIVE_ERROR_NAMES:
            return f"{type(seen).__name__}: {seen}"[:200]
        seen = seen.__cause__ or seen.__context__
    return None


def fetch_again(refetch: Refetch) -> None:
    """Have pip's own downloader fetch an evicted file once more, to the same path.

    pip's errors (an index that is down) pass unchanged; the event says the entry stays deleted.
    """
    from pip_cache_guard.hook import rejected_files  # late: see hook.LATE_MODULES

    try:
        path = refetch.download_again()
    except BaseException:
        rejected_files.settle_refetch(refetch, "failed")
        raise
    if os.path.abspath(path) != refetch.path:  # another file name (Content-Disposition)
        os.replace(path, refetch.path)
