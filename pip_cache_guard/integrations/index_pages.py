"""Integration with pip's index pages: a damaged cached page is fetched once more.

pip serves an index page from its HTTP cache while it is fresh, and revalidates it otherwise
(pip up to 25.x always asks with ``Cache-Control: max-age=0``): the server's 304 makes
CacheControl serve the stored body again. So a damaged page (a PEP 691 JSON page that
``parse_links`` cannot decode, HTML that is not text in its encoding) fails every run until its
ETag changes, and one whose rotted byte still parses (a version in an href) misleads pip silently.
Two modules, one job:

- ``pip._internal.index.collector``: ``_get_simple_response(url, session, ...)`` (pip 22.2 - 26.3;
  ``_get_html_response(url, session)`` in 21.3 - 22.1) returns the response, its body read whole
  (``session.get`` does not stream) and not parsed yet; the guard notes whether it came from the
  cache (``hook.pages.note_page``). If its cached body failed the digest its entry gives
  (``hook.pages.settle_failed_digest``), the entry is evicted and the guard calls the fetcher once
  more: pip parses only the page fetched afresh (pip caches the links of a ``--find-links`` page
  by URL, so a page parsed once is never parsed again in that run).
- ``pip._internal.index.package_finder``: ``PackageFinder.process_project_url(self, project_url,
  link_evaluator)`` (21.3 - 26.3) fetches a page and parses it. When it raises for a page that
  came from the cache, ``hook.pages.settle_page`` evicts the entry and the guard calls it once more:
  pip's own code fetches and parses the page afresh.

Either way ``hook.pages.settle_page_refetch`` records how the second attempt went (a page that
fails to parse again is the index's, one that was not served is only deleted). Anything else
raises as before. A module with neither shape is left alone, and ``apply`` says so (for
``doctor``).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Callable

from pip_cache_guard.integrations import (
    deciding,
    has_parameters,
    sum_up_at_exit,
    wrap_once,
)

_FETCHERS = ("_get_simple_response", "_get_html_response")


def apply(module: ModuleType) -> str:
    """Patch a collector or a package finder module, whichever ``module`` is."""
    finder = getattr(module, "PackageFinder", None)
    if finder is not None:
        return _apply_to_finder(module, finder)
    for name in _FETCHERS:
        if has_parameters(module, name, ["url", "session"]):
            wrap_once(module, name, _noting_fetch)
            return name
    return "unsupported: no page fetcher we know"


def _apply_to_finder(module: ModuleType, finder: type) -> str:
    if not has_parameters(
        finder, "process_project_url", ["self", "project_url", "link_evaluator"], exact=True
    ):
        return "unsupported: unknown process_project_url"
    wrap_once(finder, "process_project_url", _refetching_process)
    sum_up_at_exit()
    return "PackageFinder.process_project_url"


@deciding("pip_cache_guard.hook.pages")
def _noting_fetch(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    from pip_cache_guard.hook import pages  # late: see hook.LATE_MODULES

    url = args[0] if args else kwargs.get("url")

    def fetch() -> Any:
        response = wrapped(*args, **kwargs)
        pages.note_page(url, response)
        return response

    response = fetch()
    session = args[1] if len(args) > 1 else kwargs.get("session")
    refetch = pages.settle_failed_digest(session, url, response)
    return response if refetch is None else _once_more(pages, refetch, fetch)


@deciding("pip_cache_guard.hook.pages")
def _refetching_process(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    from pip_cache_guard.hook import pages  # late: see hook.LATE_MODULES

    try:
        return wrapped(*args, **kwargs)
    except Exception as error:

        def locate() -> tuple[Any, str]:
            project_url = args[0] if args else kwargs["project_url"]
            return instance._link_collector.session, str(project_url.url)

        refetch = pages.settle_page(locate, pages.unparsable(error))
        if refetch is None:
            raise
    return _once_more(pages, refetch, lambda: wrapped(*args, **kwargs))


def _once_more(pages: ModuleType, refetch: Any, attempt: Callable[[], Any]) -> Any:
    """pip's own code, once more, for an evicted page; its outcome recorded, its error raised."""
    try:
        result = attempt()
    except Exception:
        pages.settle_page_refetch(refetch, good=False)
        raise
    pages.settle_page_refetch(refetch, good=True)
    return result
