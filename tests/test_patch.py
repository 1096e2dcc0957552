"""Feature detection: a CacheControl generation the guard does not know is left alone, and said so.

No pip ships such a generation yet, so these few tests build stand-in modules; every real
generation is driven end to end in ``test_guard_e2e.py``.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

from pip_cache_guard._import_hook import PIP_RUN
from pip_cache_guard.integrations import controller as patch
from pip_cache_guard.integrations import deciding, is_wrapped, parameter_names, wrap_once


@pytest.fixture
def package() -> Iterator[str]:
    """A throwaway package name whose ``serialize`` module patch.apply will look up."""
    name = "unknown_cachecontrol_generation"
    serialize = types.ModuleType(f"{name}.serialize")

    class Serializer:
        def loads(self, request: object, data: bytes) -> None:
            return None

    serialize.Serializer = Serializer  # type: ignore[attr-defined]
    serialize.msgpack = types.SimpleNamespace(loads=lambda payload, raw: None)  # type: ignore[attr-defined]
    sys.modules[serialize.__name__] = serialize
    yield name
    del sys.modules[serialize.__name__]


def _controller_module(package: str, controller: type) -> types.ModuleType:
    module = types.ModuleType(f"{package}.controller")
    module.CacheController = controller  # type: ignore[attr-defined]
    return module


def test_an_unknown_controller_is_left_unpatched_and_reported(package: str) -> None:
    class CacheController:
        def lookup(self, request: object) -> None:  # neither _load_from_cache nor the 0.12 trio
            return None

    original = CacheController.lookup
    patched = patch.apply(_controller_module(package, CacheController))

    assert patched == "unsupported: unknown CacheController"
    assert CacheController.lookup is original
    assert "wrapt" not in type(sys.modules[f"{package}.serialize"].Serializer.loads).__module__


def test_a_load_method_with_another_signature_is_not_guessed_at(package: str) -> None:
    class CacheController:
        def _load_from_cache(self, request: object, extra: object) -> None:
            return None

    assert patch.apply(_controller_module(package, CacheController)).startswith("unsupported")


def test_a_module_is_patched_once_however_often_it_is_offered(package: str) -> None:
    class CacheController:
        def _load_from_cache(self, request: object) -> None:
            return None

    module = _controller_module(package, CacheController)
    patch.apply(module)
    wrapped_once = CacheController.__dict__["_load_from_cache"]

    assert patch.apply(module) == "CacheController._load_from_cache"
    assert CacheController.__dict__["_load_from_cache"] is wrapped_once
    assert CacheController().__class__._load_from_cache.__wrapped__  # a wrapt wrapper


def test_a_function_bound_anew_by_a_reload_is_wrapped_again_and_never_twice() -> None:
    module = types.ModuleType("reloaded_stand_in")

    def plus_one(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        return wrapped(*args, **kwargs) + 1

    exec("def answer():\n    return 41\n", vars(module))
    assert wrap_once(module, "answer", plus_one)
    assert not wrap_once(module, "answer", plus_one)
    exec("def answer():\n    return 41\n", vars(module))  # importlib.reload: the same namespace

    assert not is_wrapped(module, "answer")
    assert wrap_once(module, "answer", plus_one)
    assert not wrap_once(module, "answer", plus_one)
    assert module.answer() == 42


def test_pips_warning_is_dropped_only_for_a_lookup_the_guard_handled(
    package: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The filter pip's warning meets: a handled lookup hides it, any other lookup keeps it."""
    import logging

    monkeypatch.setattr(PIP_RUN, "verbosity", 0)  # what pip computed from its options

    from pip_cache_guard.hook.lookups import Lookup

    class CacheController:
        def _load_from_cache(self, request: object) -> None:
            return None

    module = _controller_module(package, CacheController)
    module.logger = logging.getLogger(f"{package}.controller")  # type: ignore[attr-defined]
    patch.apply(module)
    patch.apply(module)  # offered twice: still one filter
    (warning_filter,) = module.logger.filters

    def shown(handled: bool | None) -> bool:
        record = logging.LogRecord(
            module.logger.name, logging.WARNING, __file__, 1, patch.PIP_WARNING, None, None
        )
        lookup = None
        if handled is not None:
            lookup = Lookup(CacheController(), None, lambda payload: None, key=str)
            lookup.handled = handled
        with patch._running(lookup):
            return bool(warning_filter.filter(record))

    assert not shown(handled=True)
    assert shown(handled=False)  # an entry the guard did not account for keeps pip's warning
    assert shown(handled=None)  # a warning outside any guarded lookup
    monkeypatch.setattr(PIP_RUN, "verbosity", 1)
    assert shown(handled=True)  # pip -v: pip's own lines stay


def _every_shape(
    a: int, b: int = 1, /, c: int = 2, *args: int, d: int, e: int = 3, **kw: int
) -> int:
    local = a + b
    return local


def test_parameter_names_are_what_inspect_gives_for_every_function_pip_has() -> None:
    """The fast path (a plain function's code object) gives ``inspect.signature``'s names, and
    everything else goes through ``inspect`` itself."""
    import functools
    import importlib
    import inspect

    @functools.wraps(_every_shape)
    def decorated(*args: Any, **kwargs: Any) -> int:
        return _every_shape(*args, **kwargs)

    def keyword_only(*, key: int) -> None:
        pass

    def no_star(x: int, **rest: int) -> None:
        pass

    functions: list[Any] = [_every_shape, decorated, keyword_only, no_star, lambda: None, len]
    functions += [functools.partial(_every_shape, 1), wrap_once, patch.apply]
    for name in (
        "pip._vendor.cachecontrol.controller",
        "pip._vendor.cachecontrol.serialize",
        "pip._internal.network.download",
        "pip._internal.utils.hashes",
        "pip._internal.utils.subprocess",
        "pip._internal.cache",
        "pip._internal.commands.install",
    ):
        module = importlib.import_module(name)
        for owner in (module, *(c for c in vars(module).values() if isinstance(c, type))):
            functions += [value for value in vars(owner).values() if callable(value)]
    assert len(functions) > 200
    for function in functions:
        try:
            expected = list(inspect.signature(function).parameters)
        except (TypeError, ValueError):
            expected = None
        assert parameter_names(function) == expected, function


@pytest.mark.parametrize("blocked", ["pip_cache_guard.hook", "pip_cache_guard.hook.pages"])
def test_a_wrapper_whose_decisions_cannot_be_imported_leaves_pips_call_alone(
    monkeypatch: pytest.MonkeyPatch, blocked: str
) -> None:
    """The guard removed under a running pip (or an import barrier it did not see coming): the
    first call of a wrapper cannot import ``hook``, or the module of its concern after another
    wrapper imported ``hook``, and pip's own call goes on as without it."""
    import pip_cache_guard.hook  # noqa: F401  (as another wrapper did)

    class Barrier:
        @staticmethod
        def find_spec(name: str, *args: object) -> None:
            if name == blocked:
                raise ImportError("blocked, as pip 26.3 blocks late imports")

    package, _, attribute = blocked.rpartition(".")
    monkeypatch.delitem(sys.modules, blocked, raising=False)
    monkeypatch.delattr(sys.modules[package], attribute, raising=False)
    monkeypatch.setattr(sys, "meta_path", [Barrier(), *sys.meta_path])
    guard_ran = []

    @deciding("pip_cache_guard.hook.pages")
    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        guard_ran.append(True)
        return wrapped(*args, **kwargs)

    assert wrapper(lambda value: value * 2, None, (21,), {}) == 42
    assert guard_ran == []
