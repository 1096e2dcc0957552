"""Session-wide fixtures of the end-to-end harness (see ``tests/support/``).

Expensive things (wheels, the index server, venvs, the guard wheel) live for the whole session;
the per-test fixtures only hand out a fresh cache dir and a clean request log.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.index import LoopbackIndex
from support.reports import REPORTS
from support.venvs import VenvFactory, build_guard_wheel
from support.wheels import BuiltWheel, build_default_set

# The test runner itself usually has the guard installed (README's `pip install -e '.[test]'`).
# Unit tests compare the classifier with pip's real, unpatched serializer, so this process stays
# unguarded: drop the startup finder before anything imports pip's CacheControl.
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "_pip_cache_guard_finder", False)]

REPO_ROOT = Path(__file__).resolve().parent.parent
AUTH_CREDENTIALS = ("guard-user", "s3cr3t-t0ken")
# A guard wheel built beforehand (.ci/pythons builds one for every session it runs).
PREBUILT_WHEEL = "PCG_TEST_GUARD_WHEEL"
EVENTS_MET = "test_every_kind_and_action_was_met_in_a_real_report"


@pytest.fixture(scope="session", autouse=True)
def _own_state_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test writes the developer's own history: every process the tests start inherits a
    state directory of the session's own (tests that read the history set one of their own)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state-home")))
        yield


@pytest.fixture(scope="session", autouse=True)
def _reports_match_their_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """At the end, check the reports of pips started outside ``run_python`` (``support.reports``);
    the others were checked as they were written."""
    yield
    REPORTS.sweep(tmp_path_factory.getbasetemp())


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--partial-events",
        action="store_true",
        help="a run that skips tests (another platform, a missing Python): do not require every "
        "kind and action of the report's schema to be met in a real report",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The check that real reports met every kind and action runs after all that write them."""
    last = [item for item in items if item.name == EVENTS_MET]
    items[:] = [item for item in items if item.name != EVENTS_MET] + last


@pytest.fixture(scope="session")
def guardtest_wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, BuiltWheel]:
    """The six ``guardtest-*`` wheels, keyed by project name (``"guardtest-alpha"``...)."""
    return build_default_set(tmp_path_factory.mktemp("wheels"))


@pytest.fixture(scope="session")
def index_server(guardtest_wheels: dict[str, BuiltWheel]) -> Iterator[LoopbackIndex]:
    """The session's loopback index; prefer ``index``, which also clears the request log."""
    with LoopbackIndex(w.path for w in guardtest_wheels.values()) as server:
        yield server


@pytest.fixture
def index(index_server: LoopbackIndex) -> LoopbackIndex:
    """The loopback index, its request log emptied and ``down`` reset for this test."""
    return index_server.fresh()


@pytest.fixture(scope="session")
def no_hash_index_server(guardtest_wheels: dict[str, BuiltWheel]) -> Iterator[LoopbackIndex]:
    """An index whose links carry no hash (a wheelhouse on a plain web server)."""
    with LoopbackIndex((w.path for w in guardtest_wheels.values()), hashes=False) as server:
        yield server


@pytest.fixture
def no_hash_index(no_hash_index_server: LoopbackIndex) -> LoopbackIndex:
    """The index without hashes, its request log emptied, its settings reset for this test."""
    return no_hash_index_server.fresh()


@pytest.fixture(scope="session")
def auth_index_server(guardtest_wheels: dict[str, BuiltWheel]) -> Iterator[LoopbackIndex]:
    """A second index that answers 401 unless given ``AUTH_CREDENTIALS`` by basic auth."""
    wheels = (w.path for w in guardtest_wheels.values())
    with LoopbackIndex(wheels, credentials=AUTH_CREDENTIALS) as server:
        yield server


@pytest.fixture
def auth_index(auth_index_server: LoopbackIndex) -> LoopbackIndex:
    """The authenticated index (``.url`` embeds the credentials), its log emptied."""
    return auth_index_server.fresh()


@pytest.fixture(scope="session")
def _guard_wheel_builder(tmp_path_factory: pytest.TempPathFactory) -> Callable[[], Path]:
    """Builds the guard wheel on first call only, so unguarded sessions never build it."""
    prebuilt = os.environ.get(PREBUILT_WHEEL)
    if prebuilt:
        return lambda: Path(prebuilt)
    dest = tmp_path_factory.mktemp("guard-wheel")
    return functools.cache(lambda: build_guard_wheel(REPO_ROOT, dest))


@pytest.fixture(scope="session")
def guard_wheel(_guard_wheel_builder: Callable[[], Path]) -> Path:
    """The pip-cache-guard wheel, built once per session from this checkout."""
    return _guard_wheel_builder()


@pytest.fixture(scope="session")
def make_venv(
    tmp_path_factory: pytest.TempPathFactory, _guard_wheel_builder: Callable[[], Path]
) -> VenvFactory:
    """``make_venv(python, pip_version, guard)`` -> ``Venv``, cached for the session."""
    return VenvFactory(
        root=tmp_path_factory.mktemp("venvs"),
        wheelhouse=tmp_path_factory.mktemp("pip-wheels"),
        guard_wheel=_guard_wheel_builder,
    )


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    """A pip cache dir of this test's own (not created: pip creates it on first write)."""
    return tmp_path / "pip-cache"
