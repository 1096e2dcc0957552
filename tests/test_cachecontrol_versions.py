"""The guard with named releases of standalone CacheControl (issue 15): the version matrix.

README's test command takes the newest release of every dependency; a release that changes how
CacheControl reads its entries (0.15.0 keeps an entry whose ``Date`` it cannot parse, where 0.14
fails on it) should turn a test named after it red, not the whole run. So each release here is
installed from the registry into a directory of its own, put ahead of a venv holding the guard
wheel (``PYTHONPATH``), and gets three checks: the classifier against that real loader (the
standalone half of ``test_diagnose.py`` and ``test_fuzz.py``, run with it), the hook inside a
program using it, and ``verify`` of its cache directory.

The oldest release is installed with the oldest wrapt and platformdirs ``pyproject.toml``
accepts: the declared minimums are checked end to end once.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from support import cache
from support.guarded import PREFIX, GuardFiles, read_report
from support.index import LoopbackIndex
from support.runner import describe, pip_download, run_python
from support.standalone import entry_of, fetch
from support.venvs import Venv, VenvFactory, find_python, make_tool_venv
from support.wheels import BuiltWheel

pytestmark = pytest.mark.e2e

PYTHON = "3.11"
REPO_ROOT = Path(__file__).resolve().parent.parent
WHEEL = "guardtest_alpha-1.0-py3-none-any.whl"


@dataclass(frozen=True)
class Release:
    """A standalone CacheControl release and the other pins it is tried with."""

    version: str
    keeps_unparsable_date: bool  # 0.15+: a Date parsedate_tz cannot parse is a miss, kept
    pins: tuple[str, ...] = ()


RELEASES = [
    # The oldest supported: pyproject.toml's minimums of all three dependencies.
    Release("0.13.1", False, ("wrapt==1.14.*", "platformdirs==3.0.0")),
    Release("0.14.4", False),
    Release("0.15.0", True),
]


@pytest.fixture(scope="module")
def base_venv(tmp_path_factory: pytest.TempPathFactory, guard_wheel: Path) -> Venv:
    """One venv for all releases: the guard (with the newest dependencies), what the standalone
    CacheControl needs besides itself, and what runs the classifier's tests."""
    path = tmp_path_factory.mktemp("cachecontrol-releases") / "venv"
    # jsonschema: tests/conftest.py checks every report a test makes a pip write
    packages = ["requests", "filelock", "pytest", "hypothesis", "jsonschema"]
    return make_tool_venv(path, find_python(PYTHON), packages, guard_wheel)


@pytest.fixture(scope="module", params=RELEASES, ids=lambda r: f"cachecontrol-{r.version}")
def release(request: pytest.FixtureRequest) -> Release:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def env(release: Release, base_venv: Venv) -> dict[str, str | None]:
    """``extra_env`` that runs ``base_venv`` with this release (and its pins) ahead of what the
    venv holds: installed with ``--target`` in seconds, where a venv each takes most of a minute.
    Checks that these are the versions the programs then run with."""
    target = base_venv.path.parent / release.version
    packages = [f"cachecontrol=={release.version}", *release.pins]
    install = ["-m", "pip", "install", "-q", "--no-deps", "--target", str(target), *packages]
    installed = subprocess.run(
        [str(base_venv.python), *install], capture_output=True, text=True, check=False
    )
    assert installed.returncode == 0, describe(installed)
    env: dict[str, str | None] = {"PYTHONPATH": str(target)}
    show = "import cachecontrol, wrapt, platformdirs; from importlib.metadata import version as v;"
    show += (
        "print(cachecontrol.__file__, *(v(n) for n in ('cachecontrol', 'wrapt', 'platformdirs')))"
    )
    shown = run_python(base_venv, ["-c", show], env)
    where, *versions = shown.stdout.split()
    assert where.startswith(str(target)) and versions[0] == release.version, describe(shown)
    for pin in release.pins:  # the minimums really are what the guard runs with
        name, _, wanted = pin.partition("==")
        assert versions[1 if name == "wrapt" else 2].startswith(wanted.rstrip("*")), describe(shown)
    return env


def test_the_classifier_agrees_with_this_cachecontrols_loader(
    base_venv: Venv, env: dict[str, str | None]
) -> None:
    """The standalone flavour of the classifier's tests, run with this release (the guard's
    finder off: the loaders are to run unpatched). Without plugins: those the venv's newer
    packages declare (platformdirs 4's) are not there to load under the pinned ones."""
    tests = ["tests/test_diagnose.py", "tests/test_fuzz.py"]
    result = run_python(
        base_venv,
        ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "not _vendor", *tests],
        {**env, "PIP_CACHE_GUARD": "0", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        cwd=REPO_ROOT,
        timeout=300,
    )
    assert result.returncode == 0, describe(result)
    assert " passed" in result.stdout and "deselected" in result.stdout, describe(result)


def _damage_date(metadata: Path) -> bytes:
    """Store ``Date: garbage`` in a valid entry (an old writer, or a proxy); its bytes."""
    document = cache.read_entry(metadata)
    document["response"]["headers"]["Date"] = "garbage"
    cache.write_entry(metadata, document)
    return metadata.read_bytes()


def test_the_hook_judges_an_unreadable_date_as_this_cachecontrol_reads_it(
    release: Release,
    base_venv: Venv,
    env: dict[str, str | None],
    index: LoopbackIndex,
    tmp_path: Path,
) -> None:
    """0.13-0.14 fail on the entry: the guard deletes it and the program fetches afresh. 0.15
    revalidates it (If-None-Match, a 304): the guard leaves it alone and says nothing."""
    directory, files = tmp_path / "_http_", GuardFiles(tmp_path)
    url = index.file_url(WHEEL)
    filled = fetch(base_venv, tmp_path, "separate", directory, [url], {**env, **files.env()})
    assert filled.returncode == 0, describe(filled)
    metadata = entry_of(directory, url)
    damaged = _damage_date(metadata)

    index.reset_log()
    guarded = fetch(
        base_venv, tmp_path, "separate", directory, [url], {**env, **files.env(report="run")}
    )

    assert guarded.returncode == 0, describe(guarded)
    events = read_report(files.report("run"))["events"]
    if release.keeps_unparsable_date:
        assert events == [] and PREFIX not in guarded.stderr, describe(guarded)
        assert guarded.stdout.split()[2] == "True"  # revalidated: the cached body served
        assert index.count("/files/", status=304) == 1
    else:
        (event,) = events
        assert (event["kind"], event["action"]) == ("corrupt", "deleted"), event
        assert f"(cachecontrol {release.version} fails on it)" in event["reason"]
        assert guarded.stdout.split()[2] == "False"  # fetched afresh
    # The oracle: the same entry, unguarded.
    metadata.write_bytes(damaged)
    unguarded = fetch(
        base_venv, tmp_path, "separate", directory, [url], {**env, "PIP_CACHE_GUARD": "0"}
    )
    assert (unguarded.returncode == 0) == release.keeps_unparsable_date, describe(unguarded)


def test_verify_says_it_judged_a_cachecontrol_directory_as_this_release_reads_it(
    release: Release,
    base_venv: Venv,
    env: dict[str, str | None],
    index: LoopbackIndex,
    tmp_path: Path,
) -> None:
    directory, files = tmp_path / "_http_", GuardFiles(tmp_path)
    urls = [index.file_url(WHEEL), index.project_url("guardtest-alpha")]
    filled = fetch(base_venv, tmp_path, "separate", directory, urls, {**env, **files.env()})
    assert filled.returncode == 0, describe(filled)
    metadata = entry_of(directory, urls[0])
    _damage_date(metadata)
    verify = ["-m", "pip_cache_guard", "verify", "--cache-dir", str(directory)]

    found = run_python(base_venv, [*verify, "--json"], env)
    text = run_python(base_venv, verify, env)

    report = json.loads(found.stdout)
    assert report["judged_as"] == f"cachecontrol {release.version}", describe(found)
    assert f"judged as cachecontrol {release.version} reads it" in text.stderr, describe(text)
    if release.keeps_unparsable_date:
        assert (found.returncode, report["problems"]) == (0, []), describe(found)
    else:
        assert found.returncode == 1, describe(found)
        assert [(p["path"], p["kind"]) for p in report["problems"]] == [(str(metadata), "corrupt")]


@pytest.mark.parametrize(("pip", "kind"), [("26.3", "separate"), ("23.2.1", "inside")])
def test_this_cachecontrol_reads_entries_carrying_the_guards_record_as_before(
    pip: str,
    kind: str,
    release: Release,
    base_venv: Venv,
    env: dict[str, str | None],
    make_venv: VenvFactory,
    guardtest_wheels: dict[str, BuiltWheel],
    tmp_path: Path,
) -> None:
    """Entries a guarded pip stored, its digest record in each document (issue 17), read by this
    release pointed at pip's own directory (the same keys and files: ``SeparateBodyFileCache``
    for ``http-v2``, ``FileCache`` for pip <= 23.2's ``http``): hits of the same bytes, with the
    guard and without, nothing rewritten; ``verify`` judging as this release finds them ok."""
    wheel, files = guardtest_wheels["guardtest-alpha"], GuardFiles(tmp_path)
    with LoopbackIndex([wheel.path], hashes=False) as index:
        writer = make_venv(find_python(PYTHON), pip, guard=True)
        filled = pip_download(writer, tmp_path / "pip-cache", index, [wheel.project], files.env())
        assert filled.returncode == 0, describe(filled)
        directory = tmp_path / "pip-cache" / ("http-v2" if kind == "separate" else "http")
        url = index.file_url(wheel.filename)
        document = cache.read_entry(entry_of(directory, url))
        assert document["pip-cache-guard"] == {"sha256": wheel.sha256, "size": wheel.size}
        stored = cache.snapshot(directory)
        index.reset_log()
        for switch in ("0", None):  # the kill switch, then the guard
            run_env = {**env, **files.env(), "PIP_CACHE_GUARD": switch, "FETCH_SHA256": "1"}
            read = fetch(base_venv, tmp_path, kind, directory, [url], run_env)
            assert read.returncode == 0 and PREFIX not in read.stderr, describe(read)
            assert read.stdout.split()[1:] == [str(wheel.size), "True", wheel.sha256]
        assert index.count("/files/") == 0, index.counts()
    assert cache.snapshot(directory) == stored
    verify = ["-m", "pip_cache_guard", "verify", "--cache-dir", str(directory), "--json"]
    found = run_python(base_venv, verify, env)
    report = json.loads(found.stdout)
    assert (found.returncode, report["problems"]) == (0, []), describe(found)
    assert report["judged_as"] == f"cachecontrol {release.version}", describe(found)
