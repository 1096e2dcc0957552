"""Integration with pip's wheel cache (``pip._internal.cache``): judge a built wheel before use.

pip keeps the wheels it built from sdists in ``<cache>/wheels/``. In every pip the guard supports
(seen in 21.3.1, 23.2.1, 24.0, 25.3, 26.3) ``SimpleWheelCache.get(self, link, package_name,
supported_tags)`` picks one and returns its link, or ``link`` itself when there is none;
``WheelCache.get_cache_entry`` then wraps it in a ``CacheEntry``, which from pip 22.2
(``ORIGIN_JSON_NAME``, ``DirectUrl``) reads the ``origin.json`` beside the wheel: 22.2 - 23.1 stop
on a damaged one (and on rebuilding beside it), 23.2+ warn "Ignoring invalid cache entry origin
file" and use the wheel all the same, as they do one without that file. The guard wraps
``SimpleWheelCache.get``: a pick that ``hook.built_wheels.settle_built_wheel`` rejects is deleted
and the lookup is asked once more, so pip takes another cached wheel or builds from the sdist again
in this run. One retry; a second bad pick is a miss. ``origin.json`` is judged only for a pip that
stops on it, and never costs the wheel. This run's own builds (``EphemWheelCache``, a subclass) are
left alone. A module without this shape is left alone, and ``apply`` says so (for ``doctor``).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Callable

from pip_cache_guard.integrations import (
    Wrapper,
    deciding,
    has_parameters,
    sum_up_at_exit,
    wrap_once,
)

_GET_PARAMETERS = ["self", "link", "package_name", "supported_tags"]


def apply(module: ModuleType) -> str:
    """Wrap ``SimpleWheelCache.get`` of one ``pip._internal.cache`` module."""
    simple = getattr(module, "SimpleWheelCache", None)
    ephemeral = getattr(module, "EphemWheelCache", None)
    if (
        not isinstance(simple, type)
        or not isinstance(ephemeral, type)
        or not has_parameters(simple, "get", _GET_PARAMETERS, exact=True)
    ):
        return "unsupported: no SimpleWheelCache.get we know"
    origin_reader = _origin_reader(module)
    wrap_once(simple, "get", _checked_get(ephemeral, origin_reader))
    sum_up_at_exit()
    return "SimpleWheelCache.get" + (" (and origin.json)" if origin_reader else "")


# What pip 23.2+ logs instead of stopping on a damaged origin.json (``CacheEntry.__init__``).
TOLERATED_ORIGIN = "Ignoring invalid cache entry origin file"


def _origin_reader(module: ModuleType) -> Callable[[str], str | None] | None:
    """pip's own judgement of an ``origin.json``, as a reason it is damaged or None; None for a
    pip without origin files (before 22.2) or one that ignores a damaged one (23.2+)."""
    direct_url = getattr(module, "DirectUrl", None)
    # hook.built_wheels.ORIGIN_FILE (imported only by the first call of a wrapper)
    if getattr(module, "ORIGIN_JSON_NAME", None) != "origin.json" or direct_url is None:
        return None
    if _tolerates_damaged_origin(getattr(module, "CacheEntry", None)):
        return None

    def origin_problem(path: str) -> str | None:
        try:
            with open(path, encoding="utf-8") as stream:
                text = stream.read()
        except FileNotFoundError:
            return None  # a wheel built by a pip before 22.2: nothing to judge
        except (OSError, ValueError) as exc:  # ValueError: not UTF-8
            return f"cannot be read: {exc}"
        try:
            direct_url.from_json(text)
        except Exception as exc:  # whatever pip's reader raises, pip would raise or warn
            return f"{type(exc).__name__}: {exc}"
        return None

    return origin_problem


def _tolerates_damaged_origin(cache_entry: Any) -> bool:
    """Whether this pip's ``CacheEntry`` logs ``TOLERATED_ORIGIN`` and goes on (23.2+): told by
    the text in its code, so that a vendored pip (pipenv's) is judged by what it does."""
    code = getattr(getattr(cache_entry, "__init__", None), "__code__", None)
    constants = getattr(code, "co_consts", ())
    return any(isinstance(text, str) and TOLERATED_ORIGIN in text for text in constants)


def _checked_get(ephemeral: type, origin_problem: Callable[[str], str | None] | None) -> Wrapper:
    @deciding("pip_cache_guard.hook.built_wheels")
    def checked_get(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        from pip_cache_guard.hook import built_wheels  # late: see hook.LATE_MODULES

        link = args[0] if args else kwargs.get("link")
        found = wrapped(*args, **kwargs)
        if found is link or isinstance(instance, ephemeral):
            return found
        if not built_wheels.settle_built_wheel(instance, found, link, origin_problem):
            return found
        again = wrapped(*args, **kwargs)  # another cached wheel, or ``link``: pip builds
        if again is link or not built_wheels.settle_built_wheel(
            instance, again, link, origin_problem
        ):
            return again
        return link

    return checked_get
