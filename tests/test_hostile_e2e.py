"""Bad input and hostile conditions around the guard, with real pip 26.3 on Python 3.11.

Credentials in the index URL, links out of the cache, a cache the user cannot write, several pips
sharing one damaged cache, the kill switch, pip's own machine-readable output, verbosity, the
startup hook run more than once, and installs broken after the fact (wrapt removed, the package
uninstalled; the package directory removed: test_startup_e2e.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from support import cache
from support.guarded import (
    DEBUG_SWITCH,
    KILL_SWITCH,
    PIP_WARNING,
    PREFIX,
    REPORT_VARIABLE,
    GuardFiles,
    assert_clean_exit,
    outcomes,
    read_report,
    summary_block,
)
from support.index import LoopbackIndex
from support.runner import TRUSTED_HOST, describe, hermetic_env, pip_download, run_pip, run_python
from support.users import run_unprivileged, world_readable_tmp
from support.venvs import Venv, VenvFactory, find_python
from support.wheels import DEFAULT_PACKAGES, BuiltWheel, build_payload_sdist

PIP = "26.3"
PYTHON = "3.11"
PROJECTS = list(DEFAULT_PACKAGES)
IMPORTS_WRAPT = "import pip._vendor.cachecontrol.controller, sys; print('wrapt' in sys.modules)"


@pytest.fixture(scope="module")
def venv(make_venv: VenvFactory) -> Venv:
    return make_venv(find_python(PYTHON), PIP, guard=True)


@pytest.fixture(scope="module")
def pip_wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where dedicated venvs find pip's wheel (downloaded once for this module)."""
    return tmp_path_factory.mktemp("dedicated-pip-wheels")


@pytest.fixture
def files(tmp_path: Path) -> GuardFiles:
    return GuardFiles(tmp_path)


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A directory the unprivileged user can enter (pytest's own tmp dirs are 0700)."""
    yield from world_readable_tmp()


def dedicated_venv(root: Path, wheelhouse: Path, guard_wheel: Path) -> Venv:
    """A guarded venv of this test's own under ``root``, free to be damaged."""
    factory = VenvFactory(root=root, wheelhouse=wheelhouse, guard_wheel=lambda: guard_wheel)
    return factory(find_python(PYTHON), PIP, guard=True)


def site_packages(venv: Venv) -> Path:
    result = run_python(venv, ["-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    assert result.returncode == 0, describe(result)
    return Path(result.stdout.strip())


def fill(venv: Venv, cache_dir: Path, index: LoopbackIndex, files: GuardFiles) -> None:
    result = pip_download(venv, cache_dir, index, PROJECTS, files.env())
    assert_clean_exit(result)
    index.reset_log()


def wheel_entry(cache_dir: Path, index: LoopbackIndex, wheel: BuiltWheel) -> Path:
    return cache.entry_path(cache_dir, index.file_url(wheel.filename))


def page_entry(cache_dir: Path, index: LoopbackIndex, project: str) -> Path:
    return cache.entry_path(cache_dir, index.project_url(project))


def pip_download_command(
    venv: Venv, cache_dir: Path, index: LoopbackIndex, dest: Path, projects: Sequence[str]
) -> list[str]:
    """The command ``support.runner.pip_download`` runs, for runs it cannot make itself."""
    return [
        str(venv.python), "-m", "pip", "download", "--cache-dir", str(cache_dir),
        "--index-url", index.url, "--trusted-host", TRUSTED_HOST, "--no-deps",
        "--progress-bar", "off", "-d", str(dest), *projects,
    ]  # fmt: skip


def entry_files(entry: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in (entry, cache.body_path(entry))}


# -- credentials ------------------------------------------------------------------------------


@pytest.mark.e2e
def test_index_credentials_never_reach_output_report_or_history(
    venv: Venv,
    cache_dir: Path,
    auth_index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
    files: GuardFiles,
) -> None:
    user, token = auth_index.credentials or ("", "")
    fill(venv, cache_dir, auth_index, files)
    cache.garbage(wheel_entry(cache_dir, auth_index, guardtest_wheels["guardtest-alpha"]))
    cache.vary_mismatch(page_entry(cache_dir, auth_index, "guardtest-bravo"))

    result = pip_download(
        venv, cache_dir, auth_index, PROJECTS, files.env(report="auth"), extra_args=["-v"]
    )

    assert_clean_exit(result)
    assert len(summary_block(result.stderr)) > 1
    assert token not in result.stdout + result.stderr
    report_text = files.report("auth").read_text()
    history_text = files.history.read_text()
    assert len(read_report(files.report("auth"))["events"]) == 2
    assert len(files.history_lines()) == 1
    for secret in (user, token):
        assert secret not in report_text
        assert secret not in history_text


# -- links out of the cache --------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize("linked", ["metadata", "body"])
def test_file_symlink_out_of_the_cache_is_never_deleted_or_written_through(
    linked: str,
    venv: Venv,
    cache_dir: Path,
    index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
    files: GuardFiles,
    tmp_path: Path,
) -> None:
    fill(venv, cache_dir, index, files)
    wheel = guardtest_wheels["guardtest-alpha"]
    entry = wheel_entry(cache_dir, index, wheel)
    link = entry if linked == "metadata" else cache.body_path(entry)
    outside = tmp_path / "outside" / "precious"
    outside.parent.mkdir()
    # Garbage metadata, or a body that is too short: damage either way, seen through the link.
    content = b"\x00not a cache entry\xff" * 8 if linked == "metadata" else b"x" * 5000
    outside.write_bytes(content)
    link.unlink()
    link.symlink_to(outside)

    result = pip_download(venv, cache_dir, index, PROJECTS, files.env(report="link"))

    assert_clean_exit(result)
    assert outside.read_bytes() == content
    kind = "corrupt" if linked == "metadata" else "body-mismatch"
    report = read_report(files.report("link"))
    assert outcomes(report) == {cache.cache_key(index.file_url(wheel.filename)): (kind, "kept")}
    assert "symbolic link" in report["events"][0]["reason"]
    assert index.count("/files/") == 1, index.counts()


@pytest.mark.e2e
def test_directory_symlink_out_of_the_cache_never_leads_to_deletion_outside(
    venv: Venv,
    cache_dir: Path,
    index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
    files: GuardFiles,
    tmp_path: Path,
) -> None:
    fill(venv, cache_dir, index, files)
    wheel = guardtest_wheels["guardtest-alpha"]
    entry = wheel_entry(cache_dir, index, wheel)
    outside = tmp_path / "outside-bucket"
    shutil.move(str(entry.parent), str(outside))
    entry.parent.symlink_to(outside, target_is_directory=True)
    (outside / "precious.txt").write_bytes(b"not pip's")
    cache.wrong_shape(entry, "list")  # through the link: the kind that makes pip crash
    damaged = entry_files(outside / entry.name)
    report_path = files.report("offline")

    # With the index down pip cannot rewrite anything: what is left is what the guard did.
    index.down = True
    offline = pip_download(
        venv,
        cache_dir,
        index,
        [wheel.project],
        files.env(report="offline"),
        extra_args=["--retries", "0"],
    )
    # pip's own failure (a RetryError traceback, exit 2), with no frame of the guard in it.
    assert offline.returncode != 0, describe(offline)
    assert "pip_cache_guard" not in offline.stderr, describe(offline)
    assert sorted(p.name for p in outside.iterdir()) == sorted(
        [entry.name, cache.body_path(entry).name, "precious.txt"]
    )
    assert entry_files(outside / entry.name) == damaged
    assert (outside / "precious.txt").read_bytes() == b"not pip's"
    report = read_report(report_path)
    assert outcomes(report) == {
        cache.cache_key(index.file_url(wheel.filename)): ("corrupt", "kept")
    }
    assert "symbolic link" in report["events"][0]["reason"]

    index.down = False
    online = pip_download(venv, cache_dir, index, PROJECTS, files.env())
    assert_clean_exit(online)  # the entry that crashed pip is a miss, though it stays
    assert (outside / "precious.txt").read_bytes() == b"not pip's"


# -- a cache the user cannot write -------------------------------------------------------------


def read_only_for_nobody(cache_dir: Path, shared_tmp: Path) -> tuple[Path, dict[str, str]]:
    """Make everything below the cache root root's and read-only for nobody (the root itself
    stays writable: pip disables a cache whose root the user cannot write, and never reads it
    then); nobody's work directory (home, state, downloads, report in ``out/report.json``) and
    environment."""
    for path in cache_dir.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    cache_dir.chmod(0o777)
    work = shared_tmp / "nobody"
    for name in ("home", "state", "dl", "out"):
        (work / name).mkdir(parents=True)
        (work / name).chmod(0o777)
    env = hermetic_env(
        {
            "HOME": str(work / "home"),
            "XDG_STATE_HOME": str(work / "state"),
            REPORT_VARIABLE: str(work / "out" / "report.json"),
        }
    )
    return work, env


@pytest.mark.e2e
def test_read_only_cache_reports_delete_failed_and_pip_still_succeeds(
    shared_tmp: Path,
    pip_wheelhouse: Path,
    guard_wheel: Path,
    index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
) -> None:
    venv = dedicated_venv(shared_tmp / "venvs", pip_wheelhouse, guard_wheel)
    cache_dir = shared_tmp / "cache"
    root_files = GuardFiles(shared_tmp / "root")
    fill(venv, cache_dir, index, root_files)
    garbage = wheel_entry(cache_dir, index, guardtest_wheels["guardtest-alpha"])
    crashing = wheel_entry(cache_dir, index, guardtest_wheels["guardtest-charlie"])
    cache.garbage(garbage)
    cache.wrong_shape(crashing, "list")
    damaged = {**entry_files(garbage), **entry_files(crashing)}
    work, env = read_only_for_nobody(cache_dir, shared_tmp)
    report_path = work / "out" / "report.json"

    # Four runs meet the same two undeletable entries: one damage, not a failing disk.
    results = []
    for run in range(4):
        downloads = work / "dl" / str(run)  # a file already downloaded is not fetched again
        downloads.mkdir(mode=0o777)
        downloads.chmod(0o777)
        command = pip_download_command(venv, cache_dir, index, downloads, PROJECTS)
        results.append(run_unprivileged(command, env=env))

    for result in results:
        assert_clean_exit(result)
        block = summary_block(result.stderr)
        assert "could not be deleted" in block[0]
    assert "times in the past 7 days" not in results[-1].stderr, describe(results[-1])
    report = read_report(report_path)
    assert outcomes(report) == {
        cache.cache_key(index.file_url(guardtest_wheels[p].filename)): ("corrupt", "delete-failed")
        for p in ("guardtest-alpha", "guardtest-charlie")
    }
    assert {path: path.read_bytes() for path in damaged} == damaged
    assert len(list((work / "dl" / "3").iterdir())) == len(PROJECTS)
    history = GuardFiles(work).history_lines()
    assert len(history) == 4
    assert len({e["fingerprint"] for line in history for e in line["events"]}) == 2, history


def _damaged_built_wheel(
    venv: Venv, cache_dir: Path, index: LoopbackIndex, shared_tmp: Path
) -> tuple[list[str], str]:
    """A built wheel cut short in the wheel cache: nobody's command that meets it, and its kind."""
    sdist = build_payload_sdist(shared_tmp / "dists", "guardtest-shared")
    index.add_wheel(sdist.path)
    install = ["install", "--no-deps", "--progress-bar", "off", "--target"]
    filled = run_pip(venv, [*install, str(shared_tmp / "fill"), sdist.project], cache_dir, index)
    assert_clean_exit(filled)
    [wheel] = (cache_dir / "wheels").rglob(sdist.wheel_filename)
    cache.truncate(wheel, wheel.stat().st_size // 2)
    return [
        str(venv.python), "-m", "pip", *install, str(shared_tmp / "nobody" / "out" / "target"),
        "--cache-dir", str(cache_dir), "--index-url", index.url, "--trusted-host", TRUSTED_HOST,
        sdist.project,
    ], "bad-wheel"  # fmt: skip


def _damaged_page(
    venv: Venv, cache_dir: Path, index: LoopbackIndex, shared_tmp: Path
) -> tuple[list[str], str]:
    """A cached JSON page with a byte that is not UTF-8: nobody's command that meets it."""
    index.json_pages = True
    fill(venv, cache_dir, index, GuardFiles(shared_tmp / "root"))
    body = cache.body_path(page_entry(cache_dir, index, PROJECTS[0]))
    data = bytearray(body.read_bytes())
    data[len(data) // 2] = 0xFF
    body.write_bytes(bytes(data))
    downloads = shared_tmp / "nobody" / "out"
    return pip_download_command(venv, cache_dir, index, downloads, PROJECTS[:1]), "bad-page"


@pytest.mark.e2e
@pytest.mark.parametrize("damage", [_damaged_built_wheel, _damaged_page], ids=["wheel", "page"])
def test_a_damaged_wheel_or_page_that_cannot_be_deleted_counts_once(
    damage: Callable[[Venv, Path, LoopbackIndex, Path], tuple[list[str], str]],
    shared_tmp: Path,
    pip_wheelhouse: Path,
    guard_wheel: Path,
    index: LoopbackIndex,
) -> None:
    """Issue 15 item 6: met by every run of a user who cannot delete it (a cache shared between
    users), it is one damage, not a failing disk."""
    venv = dedicated_venv(shared_tmp / "venvs", pip_wheelhouse, guard_wheel)
    cache_dir = shared_tmp / "cache"
    command, kind = damage(venv, cache_dir, index, shared_tmp)
    work, env = read_only_for_nobody(cache_dir, shared_tmp)

    results = [run_unprivileged(command, env=env) for _ in range(3)]

    for result in results:
        block = summary_block(result.stderr)
        assert any(line.endswith(f": {kind}, delete-failed") for line in block), block
    assert "times in the past 7 days" not in results[-1].stderr, describe(results[-1])
    history = GuardFiles(work).history_lines()
    assert len(history) == 3
    marks = {event["fingerprint"] for line in history for event in line["events"]}
    assert len(marks) == 1 and "" not in marks, history


# -- several pips at once ----------------------------------------------------------------------


def damage_for_concurrency(
    cache_dir: Path, index: LoopbackIndex, wheels: dict[str, BuiltWheel]
) -> dict[Path, tuple[str, str]]:
    """Damage six entries of a filled cache, one of each kind: entry -> (URL, expected kind)."""
    w = {project: wheel_entry(cache_dir, index, wheel) for project, wheel in wheels.items()}
    p = {project: page_entry(cache_dir, index, project) for project in PROJECTS}
    cache.garbage(w["guardtest-alpha"])
    cache.wrong_shape(w["guardtest-charlie"], "list")
    cache.truncate_body(w["guardtest-foxtrot"], 5000)
    cache.old_format(p["guardtest-bravo"])
    cache.zero_length(p["guardtest-delta"])
    cache.vary_mismatch(p["guardtest-echo"])
    wheel_url = {
        project: cache.cache_key(index.file_url(wheels[project].filename)) for project in w
    }
    page_url = {project: cache.cache_key(index.project_url(project)) for project in p}
    return {
        w["guardtest-alpha"]: (wheel_url["guardtest-alpha"], "corrupt"),
        w["guardtest-charlie"]: (wheel_url["guardtest-charlie"], "corrupt"),
        w["guardtest-foxtrot"]: (wheel_url["guardtest-foxtrot"], "body-mismatch"),
        p["guardtest-bravo"]: (page_url["guardtest-bravo"], "stale-format"),
        p["guardtest-delta"]: (page_url["guardtest-delta"], "corrupt"),
        p["guardtest-echo"]: (page_url["guardtest-echo"], "vary-mismatch"),
    }


def untouched_entries(cache_dir: Path, damaged: set[Path]) -> dict[Path, bytes]:
    """Every file of every entry not in ``damaged``: these must not change."""
    entries = [entry for entry in cache.list_entries(cache_dir) if entry not in damaged]
    return {path: data for entry in entries for path, data in entry_files(entry).items()}


@pytest.mark.e2e
@pytest.mark.parametrize(("pips", "rounds"), [(8, 3)])
def test_concurrent_pips_share_a_damaged_cache_without_double_deletion(
    venv: Venv,
    cache_dir: Path,
    index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
    files: GuardFiles,
    tmp_path: Path,
    pips: int,
    rounds: int,
) -> None:
    """Each round damages the cache again and starts ``pips`` guarded pips on it at once."""
    fill(venv, cache_dir, index, files)
    for round_number in range(rounds):
        damaged = damage_for_concurrency(cache_dir, index, guardtest_wheels)
        expected_kind = dict(damaged.values())
        before = untouched_entries(cache_dir, set(damaged))
        history_before = len(files.history_lines())
        assert len(before) >= 2 * 6, "the six untouched entries, metadata and body each"
        names = [f"{round_number}-{n}" for n in range(pips)]
        processes = [
            subprocess.Popen(
                pip_download_command(venv, cache_dir, index, tmp_path / f"dl-{name}", PROJECTS),
                env=hermetic_env(files.env(report=name)),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name in names
        ]
        outputs = [process.communicate(timeout=300) for process in processes]

        for process, (stdout, stderr) in zip(processes, outputs):
            assert process.returncode == 0, stderr
            assert "Traceback" not in stderr, stderr
            assert PREFIX not in stdout, stdout
        reports = [read_report(files.report(name))["events"] for name in names]
        events = [event for report in reports for event in report]
        assert {e["url"] for e in events} == set(expected_kind), events
        for event in events:
            assert event["kind"] == expected_kind[event["url"]], event
        assert {path: path.read_bytes() for path in before} == before, round_number
        deletions = Counter(e["url"] for e in events if e["action"] == "deleted")
        # The first pip to claim a damaged entry deletes it; every other one finds it gone or
        # already replaced by a good entry (whatever that action is called), and keeps its hands
        # off: deletion claims each file by renaming it first, then checks it again.
        assert deletions == Counter(u for u, k in expected_kind.items() if k != "vary-mismatch")
        assert not [e for e in events if e["kind"] == "vary-mismatch" and e["action"] != "kept"]
        assert not [e for e in events if e["action"] == "delete-failed"], events
        # What another pip deleted occupies nothing of ours (a fresh entry there is not counted).
        assert all(e["bytes"] == 0 for e in events if e["action"] == "already-deleted"), events
        # Each damaged entry is one damage however many pips met it: the same fingerprint for all.
        history = files.history_lines()[history_before:]
        marks = {(e["url"], e["fingerprint"]) for line in history for e in line["events"]}
        assert len(marks) == len(expected_kind), history
    assert len(files.history_lines()) == sum(
        1
        for r in range(rounds)
        for n in range(pips)
        if read_report(files.report(f"{r}-{n}"))["events"]
    )
    verified = run_python(
        venv, ["-m", "pip_cache_guard", "verify", "--cache-dir", str(cache_dir), "--json"]
    )
    assert verified.returncode == 0, describe(verified)
    assert json.loads(verified.stdout)["problems"] == [], verified.stdout
    index.reset_log()
    again = pip_download(venv, cache_dir, index, PROJECTS, files.env())
    assert_clean_exit(again)
    assert again.stderr == "", describe(again)
    assert index.count("/files/") == 0, index.counts()


# -- wrapt without asyncio ---------------------------------------------------------------------

# Threads import and use asyncio after the guard imported wrapt (inside pip's session import),
# or ("race") all along while it does; wrapt's own async helpers run too. Everybody must get the
# one real asyncio, and nothing may fail.
ASYNCIO_LATER = """
import sys, threading
errors, results, done = [], [], threading.Event()

def busy():
    try:
        while not done.is_set():
            import asyncio
            results.append(asyncio.run(asyncio.sleep(0, result=-1)))
    except BaseException as exc:
        errors.append(repr(exc))

racing = [threading.Thread(target=busy) for _ in range(3) if sys.argv[1] == "race"]
for thread in racing:
    thread.start()
import pip._internal.network.session  # the guard patches pip here, importing wrapt
print("asyncio" in sys.modules, "wrapt" in sys.modules)
import wrapt.synchronization

def later(n):
    try:
        import asyncio

        @wrapt.synchronized
        async def locked(x):
            await asyncio.sleep(0)
            return x

        results.append(asyncio.run(locked(n)))
    except BaseException as exc:
        errors.append(repr(exc))

threads = [threading.Thread(target=later, args=(n,)) for n in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
done.set()
for thread in racing:
    thread.join()
import asyncio
same = wrapt.synchronization.asyncio.Lock is asyncio.Lock and asyncio is sys.modules["asyncio"]
print(errors, type(asyncio).__name__, same, sorted(set(results) - {-1}) == list(range(8)))
"""


@pytest.mark.e2e
@pytest.mark.parametrize("threads", ["after", "race"])
def test_wrapt_comes_without_asyncio_and_a_later_asyncio_is_the_real_one(
    venv: Venv, threads: str
) -> None:
    """wrapt 2.x imports asyncio (~30 modules) only for helpers the guard never calls."""
    result = run_python(venv, ["-c", ASYNCIO_LATER, threads])

    assert result.returncode == 0, describe(result)
    first, second = result.stdout.splitlines()
    if threads == "after":
        assert first == "False True"  # the guard imported wrapt, and no asyncio came with it
    assert second == "[] module True True"


# -- the kill switch ---------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("value", "imports_wrapt"),
    [
        *[(off, False) for off in ("0", "off", "false", "no", "OFF")],
        *[(on, True) for on in ("1", "", None)],
    ],
)
def test_kill_switch_keeps_wrapt_out_of_pip(
    value: str | None, imports_wrapt: bool, venv: Venv
) -> None:
    result = run_python(venv, ["-c", IMPORTS_WRAPT], {KILL_SWITCH: value})
    assert result.returncode == 0, describe(result)
    assert result.stderr == ""
    assert result.stdout.strip() == str(imports_wrapt)


@pytest.mark.e2e
@pytest.mark.parametrize("value", ["0", "off", "false", "no"])
def test_kill_switch_leaves_pip_exactly_as_without_the_guard(
    value: str,
    venv: Venv,
    cache_dir: Path,
    index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
    files: GuardFiles,
) -> None:
    fill(venv, cache_dir, index, files)
    cache.garbage(wheel_entry(cache_dir, index, guardtest_wheels["guardtest-alpha"]))

    result = pip_download(
        venv, cache_dir, index, PROJECTS, files.env(report="off", **{KILL_SWITCH: value})
    )

    assert result.returncode == 0, describe(result)
    assert result.stderr.count(PIP_WARNING) == 2, describe(result)  # pip's own, twice
    assert "pip-cache-guard" not in result.stderr + result.stdout
    assert not files.report("off").exists()
    assert not files.history.exists()


# -- output: pip's JSON on stdout, verbosity -----------------------------------------------------


@pytest.mark.e2e
def test_pip_json_output_stays_parseable_with_the_guard_at_work(
    venv: Venv,
    cache_dir: Path,
    index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
    files: GuardFiles,
) -> None:
    fill(venv, cache_dir, index, files)
    cache.garbage(wheel_entry(cache_dir, index, guardtest_wheels["guardtest-alpha"]))
    cache.wrong_shape(wheel_entry(cache_dir, index, guardtest_wheels["guardtest-bravo"]), "list")

    listed = run_pip(venv, ["list", "--format=json"], cache_dir, index, files.env())
    assert_clean_exit(listed)
    names = {item["name"].lower() for item in json.loads(listed.stdout)}
    assert {"pip", "pip-cache-guard", "wrapt"} <= names

    resolved = run_pip(
        venv,
        ["install", "--dry-run", "--quiet", "--report", "-", "guardtest-alpha", "guardtest-bravo"],
        cache_dir,
        index,
        files.env(report="dry-run"),
    )
    assert_clean_exit(resolved)
    install = json.loads(resolved.stdout)["install"]
    assert sorted(item["metadata"]["name"] for item in install) == [
        "guardtest-alpha",
        "guardtest-bravo",
    ]
    assert summary_block(resolved.stderr) == [resolved.stderr.splitlines()[-1]]
    assert len(read_report(files.report("dry-run"))["events"]) == 2


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("flags", "env", "lines"),
    [
        pytest.param([], {}, "block", id="default"),
        pytest.param(["-q"], {}, "one", id="-q"),
        pytest.param([], {"PIP_QUIET": "1"}, "one", id="PIP_QUIET=1"),
        pytest.param(["-qq"], {}, "none", id="-qq"),
        pytest.param(["-v"], {}, "detail", id="-v"),
    ],
)
def test_summary_follows_pips_verbosity(
    flags: list[str],
    env: dict[str, str],
    lines: str,
    venv: Venv,
    cache_dir: Path,
    index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
    files: GuardFiles,
) -> None:
    fill(venv, cache_dir, index, files)
    cache.garbage(wheel_entry(cache_dir, index, guardtest_wheels["guardtest-alpha"]))
    cache.vary_mismatch(page_entry(cache_dir, index, "guardtest-bravo"))

    result = pip_download(
        venv, cache_dir, index, PROJECTS, files.env(report="v", **env), extra_args=flags
    )

    assert_clean_exit(result)
    assert len(read_report(files.report("v"))["events"]) == 2  # the guard acted in every case
    if lines == "none":
        assert "pip-cache-guard" not in result.stderr, describe(result)
        return
    guard_lines = [line for line in result.stderr.splitlines() if "pip-cache-guard" in line]
    block = summary_block(result.stderr)
    details = [line.strip().partition(":")[0] for line in block if line.startswith("      ")]
    if lines == "one":
        assert block == guard_lines == [block[0]], describe(result)
    elif lines == "block":
        assert any(line.startswith("  cache: ") for line in block), block
        assert sum(line.startswith("  - ") for line in block) == 2, block
        assert details == [], block
    else:
        assert details == ["url", "file", "why"] * 2, block
    assert block[0].startswith(PREFIX)


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("flags", "config", "lines"),
    [
        pytest.param(["-qqU"], None, "none", id="-qqU"),
        pytest.param(["-Uqq"], None, "none", id="-Uqq"),
        pytest.param(["-q", "-q"], None, "none", id="-q -q"),
        pytest.param(["--quiet", "--quiet"], None, "none", id="--quiet --quiet"),
        pytest.param(["--qui"], None, "one", id="--qui"),
        pytest.param(["-vq"], None, "block", id="-vq"),
        pytest.param([], "quiet = 2", "none", id="config-quiet-2"),
    ],
)
def test_summary_follows_the_verbosity_pip_itself_computed(
    flags: list[str],
    config: str | None,
    lines: str,
    venv: Venv,
    cache_dir: Path,
    index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
    files: GuardFiles,
    tmp_path: Path,
) -> None:
    """Option clusters, abbreviations and config files: pip's option parser decides, not ours."""
    fill(venv, cache_dir, index, files)
    cache.garbage(wheel_entry(cache_dir, index, guardtest_wheels["guardtest-alpha"]))
    env = files.env(report="v")
    if config is not None:
        (tmp_path / "pip.conf").write_text(f"[global]\n{config}\n")
        env["PIP_CONFIG_FILE"] = str(tmp_path / "pip.conf")

    result = run_pip(
        venv, ["install", "--dry-run", *flags, "guardtest-alpha"], cache_dir, index, env
    )

    assert_clean_exit(result)
    assert len(read_report(files.report("v"))["events"]) == 1  # the guard acted in every case
    if lines == "none":
        assert "pip-cache-guard" not in result.stderr, describe(result)
        return
    block = summary_block(result.stderr)
    if lines == "one":
        assert block == [result.stderr.splitlines()[-1]], describe(result)
    else:
        assert any(line.startswith("  cache: ") for line in block), describe(result)


# -- the startup hook ----------------------------------------------------------------------------

COUNT_FINDERS = """
import os, site, sys, sysconfig
def finders():
    return sum(bool(getattr(f, "_pip_cache_guard_finder", False)) for f in sys.meta_path)
at_start = finders()
purelib = sysconfig.get_paths()["purelib"]
with open(os.path.join(purelib, "pip_cache_guard.pth")) as pth:
    line = pth.read().strip()
exec(line)
site.addsitedir(purelib)  # processes every .pth file of site-packages once more
sys.modules.pop("pip_cache_guard")
exec(line)  # a second copy of the package module: its install() must still see our finder
from pip_cache_guard import install
install()
print(at_start, finders(), "wrapt" in sys.modules, "pip_cache_guard.integrations" in sys.modules)
"""


@pytest.mark.e2e
def test_startup_hook_installs_one_finder_and_never_imports_wrapt_without_pip(
    venv: Venv,
) -> None:
    assert run_python(venv, ["-c", "pass"]).stderr == ""

    result = run_python(venv, ["-c", COUNT_FINDERS])

    assert result.returncode == 0, describe(result)
    assert result.stderr == ""
    assert result.stdout.split() == ["1", "1", "False", "False"]


PIP_BEFORE_THE_HOOK = """
import site, sys, sysconfig
sys.path.append(sysconfig.get_paths()["purelib"])  # python -S: no .pth has run yet
import pip._vendor.cachecontrol.controller as controller
site.main()  # now the guard's .pth runs, after pip's controller was imported
print(bool(vars(controller.CacheController).get("_pip_cache_guard_wrapped")))
"""


@pytest.mark.e2e
@pytest.mark.parametrize(("value", "patched"), [(None, "True"), ("0", "False")])
def test_a_controller_imported_before_the_hook_is_patched_when_it_installs(
    value: str | None, patched: str, venv: Venv
) -> None:
    result = run_python(venv, ["-S", "-c", PIP_BEFORE_THE_HOOK], {KILL_SWITCH: value})

    assert result.returncode == 0 and result.stderr == "", describe(result)
    assert result.stdout.strip() == patched


# -- broken installs (each in a venv of its own) --------------------------------------------------


@pytest.mark.e2e
def test_wrapt_uninstalled_after_the_guard_leaves_python_and_pip_working(
    tmp_path: Path,
    pip_wheelhouse: Path,
    guard_wheel: Path,
    cache_dir: Path,
    index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
    files: GuardFiles,
) -> None:
    venv = dedicated_venv(tmp_path / "venvs", pip_wheelhouse, guard_wheel)
    removed = run_python(venv, ["-m", "pip", "uninstall", "-y", "wrapt"])
    assert removed.returncode == 0, describe(removed)

    started = run_python(venv, ["-c", "pass"])
    assert started.returncode == 0 and started.stderr == "", describe(started)
    fill(venv, cache_dir, index, files)
    cache.garbage(wheel_entry(cache_dir, index, guardtest_wheels["guardtest-alpha"]))
    result = pip_download(venv, cache_dir, index, PROJECTS, files.env())
    assert result.returncode == 0, describe(result)
    assert "Traceback" not in result.stderr
    assert "pip-cache-guard" not in result.stderr  # unguarded: pip's own warning only
    assert result.stderr.count(PIP_WARNING) == 2, describe(result)

    cache.garbage(wheel_entry(cache_dir, index, guardtest_wheels["guardtest-alpha"]))
    debug = pip_download(venv, cache_dir, index, PROJECTS, files.env(**{DEBUG_SWITCH: "1"}))
    assert debug.returncode == 0, describe(debug)
    assert "pip-cache-guard (debug)" in debug.stderr and "wrapt" in debug.stderr, describe(debug)


@pytest.mark.e2e
def test_pip_uninstall_removes_the_startup_files(
    tmp_path: Path, pip_wheelhouse: Path, guard_wheel: Path
) -> None:
    venv = dedicated_venv(tmp_path / "venvs", pip_wheelhouse, guard_wheel)
    purelib = site_packages(venv)
    assert (purelib / "pip_cache_guard.pth").is_file()

    result = run_python(venv, ["-m", "pip", "uninstall", "-y", "pip-cache-guard"])

    assert result.returncode == 0, describe(result)
    leftovers = sorted(p.name for p in purelib.iterdir() if p.name.startswith("pip_cache_guard"))
    assert leftovers == []
    check = run_python(venv, ["-c", IMPORTS_WRAPT])
    assert check.stderr == "" and check.stdout.strip() == "False", describe(check)


@pytest.mark.e2e
def test_editable_install_activates_the_hook_and_uninstall_removes_it(
    tmp_path: Path, pip_wheelhouse: Path, guard_wheel: Path
) -> None:
    factory = VenvFactory(
        root=tmp_path / "venvs", wheelhouse=pip_wheelhouse, guard_wheel=lambda: guard_wheel
    )
    venv = factory(find_python(PYTHON), PIP, guard=False)
    repo = Path(__file__).resolve().parent.parent
    installed = run_python(venv, ["-m", "pip", "install", "-q", "-e", str(repo)], timeout=300)
    assert installed.returncode == 0, describe(installed)

    patched = run_python(
        venv,
        [
            "-c",
            "import sys, pip._vendor.cachecontrol.controller as c; "
            "print(sum(bool(getattr(f, '_pip_cache_guard_finder', 0)) for f in sys.meta_path), "
            "'_load_from_cache' in vars(c.CacheController).get('_pip_cache_guard_wrapped', ()))",
        ],
    )
    assert patched.returncode == 0 and patched.stderr == "", describe(patched)
    assert patched.stdout.split() == ["1", "True"]

    removed = run_python(venv, ["-m", "pip", "uninstall", "-y", "pip-cache-guard"])
    assert removed.returncode == 0, describe(removed)
    purelib = site_packages(venv)
    assert sorted(p.name for p in purelib.iterdir() if "pip_cache_guard" in p.name) == []
