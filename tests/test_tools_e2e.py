"""Other tools' CacheControl caches (issue 9): standalone CacheControl, pip-tools, Poetry, pipenv.

Each tool comes from the registry into a venv of its own, with the guard wheel installed beside it
("the guard in the tool's environment"), once per session. Every run goes to the loopback index
in the harness's hermetic environment; caches, homes and reports are the test's own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support import cache
from support.guarded import PREFIX, GuardFiles, read_report, summary_block
from support.index import LoopbackIndex
from support.runner import describe, run_python
from support.standalone import entry_of as _entry
from support.standalone import fetch
from support.venvs import Venv, find_python, make_tool_venv

pytestmark = pytest.mark.e2e

PYTHON = "3.11"
HOUR = 3600

ToolVenv = Callable[..., Venv]


@pytest.fixture(scope="session")
def tool_venv(tmp_path_factory: pytest.TempPathFactory, guard_wheel: Path) -> ToolVenv:
    """``tool_venv(name, packages)``: a guarded venv holding ``packages``, made once a session."""
    made: dict[str, Venv] = {}
    root = tmp_path_factory.mktemp("tool-venvs")

    def make(name: str, packages: list[str], with_pip: bool = True) -> Venv:
        if name not in made:
            python = find_python(PYTHON)
            made[name] = make_tool_venv(root / name, python, packages, guard_wheel, with_pip)
        return made[name]

    return make


@pytest.fixture
def cc_venv(tool_venv: ToolVenv) -> Venv:
    return tool_venv(
        "cachecontrol", ["cachecontrol[filecache]", "requests", "pip-tools", "pip==25.3"]
    )


def age(path: Path, seconds: float) -> None:
    moment = time.time() - seconds
    os.utime(path, (moment, moment))


# -- an entry without its body ----------------------------------------------------------------


def test_standalone_separate_body_cache_fetches_an_entry_without_its_body_again(
    cc_venv: Venv, index: LoopbackIndex, tmp_path: Path
) -> None:
    """poetry#11048: metadata published, body never written. Unguarded, CacheControl serves it
    with an empty body (IncompleteRead); guarded, it is a miss, fetched and stored again."""
    directory = tmp_path / "_http_"
    files = GuardFiles(tmp_path)
    wheel = index.file_url("guardtest_alpha-1.0-py3-none-any.whl")
    page = index.project_url("guardtest-alpha")
    filled = fetch(cc_venv, tmp_path, "separate", directory, [page, wheel], files.env())
    assert filled.returncode == 0, describe(filled)
    metadata = _entry(directory, wheel)
    body = Path(cache.body_path(metadata))
    good_body = body.read_bytes()
    body.unlink()
    age(metadata, HOUR)  # the writer is long gone: a crash between the two writes

    unguarded = fetch(
        cc_venv, tmp_path, "separate", directory, [wheel], files.env(PIP_CACHE_GUARD="0")
    )
    assert unguarded.returncode != 0 and "IncompleteRead" in unguarded.stderr, describe(unguarded)

    index.reset_log()
    healed = fetch(cc_venv, tmp_path, "separate", directory, [wheel], files.env(report="heal"))
    assert healed.returncode == 0, describe(healed)
    assert healed.stdout.split()[1:] == [str(len(good_body)), "False"]  # fetched, not from cache
    assert summary_block(healed.stderr)[0].startswith(f"{PREFIX} 1 damaged cache entry")
    (event,) = read_report(files.report("heal"))["events"]
    assert (event["kind"], event["action"], event["url"]) == ("missing-body", "deleted", wheel)
    assert index.count("/files/") == 1
    assert body.read_bytes() == good_body  # stored again, both halves

    quiet = fetch(cc_venv, tmp_path, "separate", directory, [wheel], files.env())
    assert quiet.returncode == 0 and PREFIX not in quiet.stderr, describe(quiet)
    assert quiet.stdout.split()[2] == "True"


def test_an_entry_without_its_body_written_moments_ago_is_a_miss_but_kept(
    cc_venv: Venv, index: LoopbackIndex, tmp_path: Path
) -> None:
    """A writer may be between its two writes right now: fetch afresh, delete nothing."""
    directory = tmp_path / "_http_"
    files = GuardFiles(tmp_path)
    wheel = index.file_url("guardtest_alpha-1.0-py3-none-any.whl")
    assert fetch(cc_venv, tmp_path, "separate", directory, [wheel], files.env()).returncode == 0
    metadata = _entry(directory, wheel)
    Path(cache.body_path(metadata)).unlink()

    result = fetch(cc_venv, tmp_path, "separate", directory, [wheel], files.env(report="fresh"))

    assert result.returncode == 0, describe(result)
    (event,) = read_report(files.report("fresh"))["events"]
    assert (event["kind"], event["action"]) == ("missing-body", "kept")
    assert "possibly by a writer still at work" in event["reason"]
    assert Path(cache.body_path(metadata)).is_file()  # the fresh response was stored whole


@pytest.mark.parametrize("version", ["0.14.4", "0.15.0"])
def test_standalone_cachecontrol_entries_are_deleted_whole_whatever_its_warning(
    tool_venv: ToolVenv, index: LoopbackIndex, tmp_path: Path, version: str
) -> None:
    """CacheControl 0.15 logs "deserialization failed" at debug level only, and closes the body
    file it opened when ``loads`` fails: the guard judges each entry inside ``loads`` and deletes
    both its files (a body left behind, unaccounted for, was the 0.15 failure)."""
    venv = tool_venv(f"cachecontrol-{version}", [f"cachecontrol[filecache]=={version}", "requests"])
    directory = tmp_path / "_http_"
    files = GuardFiles(tmp_path)
    pages = [index.project_url(p) for p in ("guardtest-alpha", "guardtest-bravo")]
    wheel = index.file_url("guardtest_alpha-1.0-py3-none-any.whl")
    filled = fetch(venv, tmp_path, "separate", directory, [*pages, wheel], files.env())
    assert filled.returncode == 0, describe(filled)
    cache.wrong_shape(_entry(directory, pages[0]))  # loads raises
    cache.garbage(_entry(directory, pages[1]))  # loads gives nothing
    cache.truncate_body(_entry(directory, wheel), 10)  # a hit, judged
    sizes = {
        url: sum(f.stat().st_size for f in (m, Path(cache.body_path(m))))
        for url in (*pages, wheel)
        for m in [_entry(directory, url)]
    }

    healed = fetch(venv, tmp_path, "separate", directory, [*pages, wheel], files.env(report="cc"))

    assert healed.returncode == 0 and "Traceback" not in healed.stderr, describe(healed)
    assert "deserialization failed" not in healed.stderr
    events = read_report(files.report("cc"))["events"]
    assert {e["url"]: (e["kind"], e["action"], e["bytes"]) for e in events} == {
        pages[0]: ("corrupt", "deleted", sizes[pages[0]]),
        pages[1]: ("corrupt", "deleted", sizes[pages[1]]),
        wheel: ("body-mismatch", "deleted", sizes[wheel]),
    }
    assert summary_block(healed.stderr)[0].startswith(f"{PREFIX} 3 damaged cache entries")


# -- verify on real caches of other tools ------------------------------------------------------


def verify_json(venv: Venv, *args: str) -> tuple[int, dict[str, object]]:
    result = run_python(venv, ["-m", "pip_cache_guard", "verify", "--json", *args])
    assert result.returncode in (0, 1), describe(result)
    return result.returncode, json.loads(result.stdout)


@pytest.mark.parametrize("kind", ["separate", "inside"])
def test_verify_fixes_exactly_the_damage_in_a_standalone_cachecontrol_cache(
    cc_venv: Venv, index: LoopbackIndex, tmp_path: Path, kind: str
) -> None:
    """Written by CacheControl's own FileCache / SeparateBodyFileCache: lock files included."""
    directory = tmp_path / ("_http_" if kind == "separate" else "pip-audit")
    projects = ["guardtest-alpha", "guardtest-bravo", "guardtest-charlie"]
    urls = [index.project_url(p) for p in projects]
    urls.append(index.file_url("guardtest_alpha-1.0-py3-none-any.whl"))
    filled = fetch(cc_venv, tmp_path, kind, directory, urls, GuardFiles(tmp_path).env())
    assert filled.returncode == 0, describe(filled)
    locks = sorted(directory.rglob("*.lock"))
    assert locks, "filelock left no lock files: the layout changed"

    code, clean = verify_json(cc_venv, "--cache-dir", str(directory))
    assert (code, clean["problems"], clean["unrecognised"]) == (0, [], [])
    assert clean["entries"] == len(urls)

    garbage, truncated = _entry(directory, urls[0]), _entry(directory, urls[1])
    cache.garbage(garbage)
    cache.truncate(truncated, 20)
    damaged = {str(garbage): "corrupt", str(truncated): "corrupt"}
    if kind == "separate":
        orphaned = _entry(directory, urls[3])
        Path(cache.body_path(orphaned)).unlink()
        age(orphaned, HOUR)
        damaged[str(orphaned)] = "orphan"
    untouched = cache.snapshot(_entry(directory, urls[2]).parent)

    code, found = verify_json(cc_venv, "--cache-dir", str(directory))
    assert code == 1 and {p["path"]: p["kind"] for p in found["problems"]} == damaged  # type: ignore[index, union-attr]

    code, fixed = verify_json(cc_venv, "--cache-dir", str(directory), "--fix")
    assert code == 0 and fixed["remaining"] == 0
    assert not any(Path(path).exists() for path in damaged)
    assert sorted(directory.rglob("*.lock")) == locks
    assert cache.snapshot(_entry(directory, urls[2]).parent) == untouched


def test_verify_fixes_a_pip_tools_cache(
    cc_venv: Venv, index: LoopbackIndex, tmp_path: Path
) -> None:
    """pip-compile keeps its own pip cache (``--cache-dir``, default ~/.cache/pip-tools)."""
    tools_cache = tmp_path / "pip-tools"
    requirements = tmp_path / "requirements.in"
    requirements.write_text("guardtest-alpha\nguardtest-bravo\n")
    compile_args = [
        "-m", "piptools", "compile", "--quiet", "--cache-dir", str(tools_cache),
        "--index-url", index.url, "--trusted-host", "127.0.0.1",
        "--output-file", str(tmp_path / "requirements.txt"), str(requirements),
    ]  # fmt: skip
    env = GuardFiles(tmp_path).env()
    compiled = run_python(cc_venv, compile_args, env)
    assert compiled.returncode == 0, describe(compiled)
    http = tools_cache / "http-v2"
    metadata_files = sorted(p for p in http.rglob("*") if p.is_file() and p.suffix == "")
    assert metadata_files, describe(compiled)

    assert verify_json(cc_venv, "--cache-dir", str(tools_cache))[0] == 0
    cache.garbage(metadata_files[0])
    code, found = verify_json(cc_venv, "--cache-dir", str(tools_cache))
    assert code == 1 and [p["path"] for p in found["problems"]] == [str(metadata_files[0])]  # type: ignore[index, union-attr]
    assert verify_json(cc_venv, "--cache-dir", str(http), "--fix")[0] == 0
    assert not metadata_files[0].exists()


# -- Poetry ---------------------------------------------------------------------------------------

POETRY_PROJECT = """
[project]
name = "demo"
version = "0.1.0"
requires-python = ">=3.9"
dependencies = [
    "guardtest-alpha",
    "guardtest-bravo @ {bravo}",
    "guardtest-charlie @ {charlie}",
]

[tool.poetry]
package-mode = false

[[tool.poetry.source]]
name = "loop"
url = "{index}"
priority = "primary"
"""


@pytest.mark.parametrize(
    ("requirement", "http_dir"), [("poetry>=2.4", "_http_"), ("poetry>=2.0,<2.4", "_http")]
)
def test_poetry_with_the_guard_in_its_environment_heals_its_cache(
    tool_venv: ToolVenv, index: LoopbackIndex, tmp_path: Path, requirement: str, http_dir: str
) -> None:
    """A damaged index page and direct-URL wheels (one cut short, one without its body where
    the layout keeps bodies apart): unguarded Poetry fails, guarded it succeeds, then is silent."""
    venv = tool_venv(requirement, [requirement])
    project = tmp_path / "project"
    project.mkdir()
    bravo = index.file_url("guardtest_bravo-1.0-py3-none-any.whl")
    charlie = index.file_url("guardtest_charlie-1.0-py3-none-any.whl")
    (project / "pyproject.toml").write_text(
        POETRY_PROJECT.format(index=index.url, bravo=bravo, charlie=charlie)
    )
    poetry_cache = tmp_path / "poetry-cache"
    files = GuardFiles(tmp_path)
    env = files.env(
        POETRY_CACHE_DIR=str(poetry_cache),
        POETRY_CONFIG_DIR=str(tmp_path / "poetry-config"),
        POETRY_VIRTUALENVS_IN_PROJECT="true",
    )

    def poetry(*args: str, **more: str) -> subprocess.CompletedProcess[str]:
        return run_python(venv, ["-m", "poetry", "--no-ansi", *args], {**env, **more}, cwd=project)

    def forget_artifacts() -> None:  # Poetry keeps downloaded wheels apart: make it ask again
        shutil.rmtree(poetry_cache / "artifacts", ignore_errors=True)

    filled = poetry("lock")
    assert filled.returncode == 0, describe(filled)
    repositories = poetry_cache / "cache" / "repositories"
    page = _entry(repositories / "loop" / http_dir, index.project_url("guardtest-alpha"))
    direct = repositories / "_default_cache" / http_dir
    pristine = tmp_path / "pristine"
    shutil.copytree(poetry_cache, pristine)

    def damage() -> dict[str, str]:
        shutil.rmtree(poetry_cache)
        shutil.copytree(pristine, poetry_cache)
        cache.wrong_shape(page)
        damaged = {page: "corrupt"}
        if http_dir == "_http_":
            cache.truncate_body(_entry(direct, bravo), 10)
            missing = _entry(direct, charlie)
            Path(cache.body_path(missing)).unlink()
            age(missing, HOUR)
            damaged.update({_entry(direct, bravo): "body-mismatch", missing: "missing-body"})
        else:
            cache.truncate(_entry(direct, bravo), 200)
            damaged[_entry(direct, bravo)] = "corrupt"
        return {str(path): kind for path, kind in damaged.items()}

    damage()
    forget_artifacts()
    unguarded = poetry("lock", "--regenerate", PIP_CACHE_GUARD="0")
    assert unguarded.returncode != 0 or http_dir == "_http", describe(unguarded)

    expected = damage()
    forget_artifacts()
    healed = poetry("lock", "--regenerate", PIP_CACHE_GUARD_REPORT=str(files.report("poetry")))
    assert healed.returncode == 0, describe(healed)
    block = summary_block(healed.stderr)
    assert block[0].startswith(f"{PREFIX} {len(expected)} damaged")
    # both caches it read, each heading the entries found in it
    cache_lines = [line for line in block if line.strip().startswith("cache:")]
    assert len(cache_lines) == 2, block
    assert sorted(str(page.parents[5]) in line for line in cache_lines) == [False, True], block
    assert sorted(str(direct) in line for line in cache_lines) == [False, True], block
    report = read_report(files.report("poetry"))
    assert {e["cache_file"]: e["kind"] for e in report["events"]} == expected
    assert {e["action"] for e in report["events"]} == {"deleted"}
    installed = poetry("install")
    assert installed.returncode == 0 and PREFIX not in installed.stderr, describe(installed)

    forget_artifacts()
    quiet = poetry("lock", "--regenerate")
    assert quiet.returncode == 0 and PREFIX not in quiet.stderr, describe(quiet)


# -- pipenv ---------------------------------------------------------------------------------------

PIPFILE = """
[[source]]
url = "{index}"
verify_ssl = false
name = "loop"

[packages]
guardtest-alpha = "*"
guardtest-bravo = "*"
"""


# The newest pipenv (issue 16); it vendors pip 26.3.
PIPENV, PIPENV_PIP = "pipenv==2026.11.0", "26.3"


def test_pipenv_vendored_pip_is_guarded_and_a_pipenv_run_heals_its_cache(
    tool_venv: ToolVenv, index: LoopbackIndex, tmp_path: Path
) -> None:
    """pipenv imports its own pip as ``pipenv.patched.pip`` and runs it (resolver, installs) in
    subprocesses of the project's interpreter: here the venv holding pipenv and the guard is the
    project's environment (``VIRTUAL_ENV``), so those subprocesses are guarded."""
    venv = tool_venv("pipenv", [PIPENV])
    controller = "pipenv.patched.pip._vendor.cachecontrol.controller"
    probe = run_python(
        venv,
        ["-c", f"import {controller}; from pip_cache_guard._import_hook import PIP_RUN; "
         f"print(PIP_RUN.patch_points['{controller}'], PIP_RUN.pip_version())"],
    )  # fmt: skip
    vendored = run_python(venv, ["-c", "import pipenv.patched.pip as p; print(p.__version__)"])
    assert probe.stdout.split() == ["CacheController._load_from_cache", PIPENV_PIP], describe(probe)
    assert vendored.stdout.strip() == PIPENV_PIP

    project = tmp_path / "project"
    project.mkdir()
    (project / "Pipfile").write_text(PIPFILE.format(index=index.url))
    pipenv_cache = tmp_path / "pipenv-cache"
    files = GuardFiles(tmp_path)
    env = files.env(
        PIPENV_CACHE_DIR=str(pipenv_cache),
        VIRTUAL_ENV=str(venv.path),
        PIPENV_VERBOSITY="-1",
    )

    def pipenv(*args: str, **more: str) -> subprocess.CompletedProcess[str]:
        return run_python(venv, ["-m", "pipenv", *args], {**env, **more}, cwd=project)

    def uninstall() -> None:
        run_python(
            venv, ["-m", "pip", "uninstall", "-q", "-y", "guardtest-alpha", "guardtest-bravo"]
        )

    filled = pipenv("install")
    assert filled.returncode == 0, describe(filled)
    http = pipenv_cache / "http-v2"
    pages = [_entry(http, index.project_url(p)) for p in ("guardtest-alpha", "guardtest-bravo")]
    wheels = [
        _entry(http, index.file_url(f"guardtest_{p}-1.0-py3-none-any.whl"))
        for p in ("alpha", "bravo")
    ]
    pristine = tmp_path / "pristine"
    shutil.copytree(pipenv_cache, pristine)

    def damage() -> None:
        shutil.rmtree(pipenv_cache)
        shutil.copytree(pristine, pipenv_cache)
        cache.wrong_shape(pages[0])
        cache.garbage(pages[1])
        for wheel in wheels:
            cache.truncate_body(wheel, 10)
        uninstall()

    damage()
    unguarded = pipenv("lock", PIP_CACHE_GUARD="0")
    assert unguarded.returncode != 0, describe(unguarded)  # pip raises on the wrong shape

    damage()
    locked = pipenv("lock")
    assert locked.returncode == 0 and PREFIX in locked.stderr, describe(locked)
    synced = pipenv("sync")
    assert synced.returncode == 0, describe(synced)
    assert run_python(venv, ["-c", "import guardtest_alpha, guardtest_bravo"]).returncode == 0
    incidents = files.history_lines()
    events = {e["cache_file"]: (e["kind"], e["action"]) for i in incidents for e in i["events"]}
    assert events == {
        str(pages[0]): ("corrupt", "deleted"),
        str(pages[1]): ("corrupt", "deleted"),
        str(wheels[0]): ("body-mismatch", "deleted"),
        str(wheels[1]): ("body-mismatch", "deleted"),
    }
    assert {i["pip_version"] for i in incidents} == {vendored.stdout.strip()}

    uninstall()
    quiet = pipenv("lock")
    assert quiet.returncode == 0 and PREFIX not in quiet.stderr, describe(quiet)
    assert pipenv("sync").returncode == 0


# -- conda-lock ----------------------------------------------------------------------------------

# conda-lock 4 solves the ``pip:`` part of an environment with the Poetry it vendors
# (``conda_lock._vendor.poetry``), whose Authenticator keeps standalone CacheControl's ``FileCache``
# in ``<cache-dir>/cache/repositories/<sha256 of the URL>/_http``. This looks the projects up the
# way its solver does: through the pool of repositories ``solve_pypi`` prepares.
CONDA_LOCK_LOOKUP = """
import sys
from conda_lock._vendor.poetry.core.packages.dependency import Dependency
from conda_lock.models.pip_repository import PipRepository
from conda_lock.pypi_solver import _prepare_repositories_pool
index, *projects = sys.argv[1:]
pool = _prepare_repositories_pool(False, [PipRepository.from_string(index)])
for project in projects:
    print(project, *sorted(str(p.version) for p in pool.find_packages(Dependency(project, "*"))))
"""


def test_conda_lock_vendored_poetry_with_the_guard_in_its_environment_heals_its_cache(
    tool_venv: ToolVenv, index: LoopbackIndex, tmp_path: Path
) -> None:
    """Damaged index pages in conda-lock's (vendored Poetry's) cache: unguarded the lookup
    fails, guarded each page is one event, deleted, fetched again; then silent."""
    venv = tool_venv("conda-lock", ["conda-lock>=4,<5"])
    version = run_python(venv, ["-c", "import conda_lock; print(conda_lock.__version__)"])
    assert version.stdout.startswith("4."), describe(version)
    script = tmp_path / "lookup.py"
    script.write_text(CONDA_LOCK_LOOKUP)
    projects = ["guardtest-alpha", "guardtest-bravo"]
    files = GuardFiles(tmp_path)
    env = files.env(
        POETRY_CACHE_DIR=str(tmp_path / "conda-lock-cache"),
        POETRY_CONFIG_DIR=str(tmp_path / "conda-lock-config"),
    )

    def lookup(**more: str) -> subprocess.CompletedProcess[str]:
        return run_python(venv, [str(script), index.url, *projects], {**env, **more})

    filled = lookup()
    assert filled.returncode == 0, describe(filled)
    assert filled.stdout.split("\n")[:2] == [f"{p} 1.0" for p in projects], describe(filled)
    (http,) = (tmp_path / "conda-lock-cache" / "cache" / "repositories").glob("*/_http")
    pages = [_entry(http, index.project_url(p)) for p in projects]
    cache.wrong_shape(pages[0])
    cache.truncate(pages[1], 100)
    damaged = {page: page.read_bytes() for page in pages}

    unguarded = lookup(PIP_CACHE_GUARD="0")
    assert unguarded.returncode != 0, describe(unguarded)
    assert {page: page.read_bytes() for page in pages} == damaged

    healed = lookup(PIP_CACHE_GUARD_REPORT=str(files.report("conda-lock")))
    assert healed.returncode == 0 and healed.stdout == filled.stdout, describe(healed)
    assert summary_block(healed.stderr)[0].startswith(f"{PREFIX} 2 damaged cache entries")
    events = read_report(files.report("conda-lock"))["events"]
    assert {e["cache_file"]: (e["kind"], e["action"]) for e in events} == {
        str(page): ("corrupt", "deleted") for page in pages
    }
    quiet = lookup()
    assert quiet.returncode == 0 and PREFIX not in quiet.stderr, describe(quiet)


# -- verify --all and doctor ---------------------------------------------------------------------


def test_verify_all_checks_the_cache_of_every_tool_in_one_run(
    cc_venv: Venv, index: LoopbackIndex, tmp_path: Path
) -> None:
    """Caches where each tool looks (defaults under XDG_CACHE_HOME, Poetry's and pipenv's by
    their variables), filled for real; one damaged entry in Poetry's: one section each, exit 1,
    --fix fixes exactly that one, doctor lists them all."""
    xdg = tmp_path / "xdg-cache"
    env = {
        **GuardFiles(tmp_path).env(),
        "HOME": str(tmp_path / "home"),
        "XDG_CACHE_HOME": str(xdg),
        "XDG_CONFIG_HOME": str(tmp_path / "xdg-config"),
        "POETRY_CACHE_DIR": str(tmp_path / "poetry"),
        "PIPENV_CACHE_DIR": str(tmp_path / "pipenv"),
    }
    page = index.project_url("guardtest-alpha")
    poetry_http = tmp_path / "poetry" / "cache" / "repositories" / "loop" / "_http_"
    for kind, directory in [("separate", poetry_http), ("inside", xdg / "pip-audit")]:
        assert fetch(cc_venv, tmp_path, kind, directory, [page], env).returncode == 0
    for pip_cache in (xdg / "pip", tmp_path / "pipenv"):
        args = ["-m", "pip", "download", "--no-deps", "-d", str(tmp_path / "dl")]
        args += ["--cache-dir", str(pip_cache), "--index-url", index.url]
        args += ["--trusted-host", "127.0.0.1", "guardtest-alpha"]
        assert run_python(cc_venv, args, env).returncode == 0
    cache.garbage(_entry(poetry_http, page))

    def verify_all(*more: str) -> tuple[int, dict[str, Any]]:
        result = run_python(cc_venv, ["-m", "pip_cache_guard", "verify", "--all", *more], env)
        assert result.returncode in (0, 1), describe(result)
        return result.returncode, json.loads(result.stdout)

    code, found = verify_all("--json")
    sections = {c["tool"]: (c["cache_dir"], len(c["problems"])) for c in found["caches"]}
    assert code == 1 and sections == {
        "pip": (str(xdg / "pip"), 0),
        "pipenv": (str(tmp_path / "pipenv"), 0),
        "poetry (loop)": (str(poetry_http), 1),
        "pip-audit": (str(xdg / "pip-audit"), 0),
    }
    assert all(c["entries"] for c in found["caches"])
    text = run_python(cc_venv, ["-m", "pip_cache_guard", "verify", "--all"], env)
    assert "[poetry (loop)]" in text.stderr and "[pip-audit]" in text.stderr, describe(text)
    assert verify_all("--fix", "--json")[0] == 0
    assert verify_all("--json")[0] == 0 and not _entry(poetry_http, page).exists()

    doctor = run_python(cc_venv, ["-m", "pip_cache_guard", "doctor", "--json"], env)
    listed = {c["tool"]: c["exists"] for c in json.loads(doctor.stdout)["tool_caches"]}
    assert listed == {
        "pip": True, "pip-tools": False, "pipenv": True, "poetry (loop)": True, "pip-audit": True
    }  # fmt: skip


def test_doctor_in_an_environment_with_only_cachecontrol_says_the_hook_is_live(
    tool_venv: ToolVenv,
) -> None:
    """No pip at all (a tool's own environment, as Poetry's or pipx's can be): the hook is
    live if standalone CacheControl's controller is patched."""
    venv = tool_venv("no-pip", ["requests"], with_pip=False)
    assert run_python(venv, ["-c", "import pip"]).returncode != 0
    doctor = run_python(venv, ["-m", "pip_cache_guard", "doctor", "--json"])
    health = json.loads(doctor.stdout)
    assert doctor.returncode == 0 and health["hook_active"], describe(doctor)
    assert health["patch_points"] == {"cachecontrol.controller": "CacheController._load_from_cache"}
    off = run_python(venv, ["-m", "pip_cache_guard", "doctor", "--json"], {"PIP_CACHE_GUARD": "0"})
    assert off.returncode == 1 and not json.loads(off.stdout)["hook_active"]


# -- CacheControl's own test suite ----------------------------------------------------------------

CACHECONTROL_SOURCE = "CACHECONTROL_SOURCE"
# Tests of CacheControl's suite that store by hand an entry CacheControl never stores from a
# real response, which the guard rightly refuses:
CACHECONTROL_EXCEPTIONS = {
    # ``_cache_set`` of a 7-byte body under "Content-Length: 100": a body-mismatch, so the
    # guard makes it a miss where the test expects the (impossible) entry to be served.
    "tests/test_cache_control.py::TestCacheControllerResponse::"
    "test_update_cached_response_with_valid_headers_separate_body",
}


@pytest.mark.skipif(
    not os.environ.get(CACHECONTROL_SOURCE),
    reason=f"set {CACHECONTROL_SOURCE} to a checkout of psf/cachecontrol",
)
def test_cachecontrols_own_test_suite_passes_with_the_guard_live(
    tool_venv: ToolVenv, tmp_path: Path
) -> None:
    """Runs the suite of a psf/cachecontrol checkout named by ``CACHECONTROL_SOURCE`` (its
    sdist ships no tests, so the registry cannot provide them) against its own code, guarded."""
    source = os.environ[CACHECONTROL_SOURCE]
    version = re.search(
        r'^version = "([^"]+)"', (Path(source) / "pyproject.toml").read_text(), re.M
    )
    assert version is not None
    venv = tool_venv(
        "cachecontrol-suite",
        [
            f"cachecontrol[filecache,redis]=={version.group(1)}",
            "cherrypy",
            "cheroot>=11.1.2",
            "pytest",
        ],
    )
    files = GuardFiles(tmp_path)
    suite = run_python(
        venv,
        ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", "tests"],
        files.env(PYTHONDONTWRITEBYTECODE="1"),
        cwd=Path(source),
        timeout=600,
    )
    failed = set(re.findall(r"^FAILED (\S+)", suite.stdout, re.M))
    assert failed == CACHECONTROL_EXCEPTIONS, describe(suite)
    assert re.search(r"\b\d+ passed\b", suite.stdout), describe(suite)
