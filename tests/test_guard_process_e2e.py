"""Where pip runs in an unusual way, and where the guard's own commands run (issue 7).

- ``python pip.pyz ...`` on Python 3.9, whose zipimporter has only the legacy ``load_module``.
- ``importlib.reload`` of pip's controller module: the new classes are patched again.
- ``doctor`` imports pip's controller, so its exit handler would run: it must not rewrite the JSON
  report of a pip run, nor add to the history.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from support import cache
from support.guarded import PREFIX, REPORT_VARIABLE, GuardFiles, read_report, summary_block
from support.index import LoopbackIndex
from support.runner import TRUSTED_HOST, describe, pip_download, run_python
from support.venvs import VenvFactory, find_python
from support.wheels import BuiltWheel

pytestmark = pytest.mark.e2e

ZIPAPP_PYTHON, ZIPAPP_PIP = "3.9", "25.3"  # 3.10 gave zipimporter exec_module; pip 26 needs 3.10


@pytest.fixture
def files(tmp_path: Path) -> GuardFiles:
    return GuardFiles(tmp_path)


def build_zipapp(pip_wheel: Path, dest: Path) -> Path:
    """``pip.pyz``: pip's package from its wheel, and a ``__main__`` that runs it (as get-pip's)."""
    with zipfile.ZipFile(pip_wheel) as wheel, zipfile.ZipFile(dest, "w") as app:
        for name in wheel.namelist():
            if name.startswith("pip/"):
                app.writestr(name, wheel.read(name))
        app.writestr("__main__.py", "import sys\nfrom pip._internal.cli.main import main\n"
                     "sys.exit(main())\n")  # fmt: skip
    return dest


def test_a_zipapp_pip_on_python_3_9_is_guarded_and_doctor_says_so(
    make_venv: VenvFactory,
    cache_dir: Path,
    index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
    files: GuardFiles,
    tmp_path: Path,
) -> None:
    venv = make_venv(find_python(ZIPAPP_PYTHON), ZIPAPP_PIP, guard=True)
    pyz = build_zipapp(make_venv.pip_wheel(ZIPAPP_PIP), tmp_path / "pip.pyz")
    wheel = guardtest_wheels["guardtest-alpha"]

    def download(dest: str) -> list[str]:
        return [
            str(pyz), "download", "--no-deps", "-d", str(tmp_path / dest), "--cache-dir",
            str(cache_dir), "--index-url", index.url, "--trusted-host", TRUSTED_HOST, wheel.project,
        ]  # fmt: skip

    version = run_python(venv, [str(pyz), "--version"])
    assert f"from {pyz}" in version.stdout, describe(version)  # the zipapp's pip, not the venv's
    filled = run_python(venv, download("first"), files.env())
    assert filled.returncode == 0 and filled.stderr == "", describe(filled)
    cache.garbage(cache.entry_path(cache_dir, index.file_url(wheel.filename)))

    healed = run_python(venv, download("second"), files.env(report="zipapp"))

    assert healed.returncode == 0, describe(healed)
    assert summary_block(healed.stderr)[0].startswith(PREFIX)
    url = cache.cache_key(index.file_url(wheel.filename))
    events = read_report(files.report("zipapp"))["events"]
    assert [(e["url"], e["action"]) for e in events] == [(url, "deleted")]
    # doctor, with the zipapp's pip first on the path, as that pip runs: active, and patched.
    doctor = run_python(
        venv, ["-m", "pip_cache_guard", "doctor", "--json"], files.env(PYTHONPATH=str(pyz))
    )
    health = json.loads(doctor.stdout)
    assert health["hook_active"] is True, describe(doctor)
    assert health["patch_point"] == "CacheController._load_from_cache", health


RELOAD = """
import importlib, os, sys
from pip._internal.network.cache import SafeFileCache
from pip._vendor.cachecontrol import controller
from pip._vendor.requests import Request
from pip_cache_guard.hook import STATE
from pip_cache_guard._import_hook import PIP_RUN

reloaded = importlib.reload(controller)
cache = SafeFileCache(sys.argv[1])
path = cache._get_cache_path(sys.argv[2])
os.makedirs(os.path.dirname(path))
with open(path, "wb") as damaged, open(path + ".body", "wb") as body:
    damaged.write(b"garbage, not an entry" * 10)  # pip reads an entry only if it has a body
request = Request("GET", sys.argv[2]).prepare()
print(reloaded.CacheController(cache).cached_request(request))
print(os.path.exists(path), PIP_RUN.patch_points[reloaded.__name__])
print([(event.kind, event.action) for event in STATE.ledger.events()])
# The other watched modules, whose patched functions a reload binds anew in the same namespace.
from pip._internal.cli import base_command
from pip._internal.commands import install
for module, name in ((base_command, "setup_logging"), (install, "_prevent_further_imports")):
    wrapper = type(vars(importlib.reload(module))[name]).__name__
    print(wrapper, PIP_RUN.patch_points[module.__name__])
"""


def test_a_reloaded_controller_module_is_patched_again(
    make_venv: VenvFactory, cache_dir: Path, files: GuardFiles
) -> None:
    venv = make_venv(find_python("3.11"), "26.3", guard=True)

    result = run_python(
        venv, ["-c", RELOAD, str(cache_dir), "https://example.invalid/x.whl"], files.env()
    )

    assert result.returncode == 0, describe(result)
    assert result.stdout.splitlines() == [
        "False",
        "False CacheController._load_from_cache",
        "[('corrupt', 'deleted')]",
        "FunctionWrapper setup_logging",
        "FunctionWrapper _prevent_further_imports",
    ], describe(result)


def test_doctor_leaves_the_report_and_history_of_a_pip_run_alone(
    make_venv: VenvFactory,
    cache_dir: Path,
    index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
    files: GuardFiles,
) -> None:
    venv = make_venv(find_python("3.11"), "26.3", guard=True)
    wheel = guardtest_wheels["guardtest-alpha"]
    assert pip_download(venv, cache_dir, index, [wheel.project], files.env()).returncode == 0
    cache.garbage(cache.entry_path(cache_dir, index.file_url(wheel.filename)))
    healed = pip_download(venv, cache_dir, index, [wheel.project], files.env(report="pip"))
    assert healed.returncode == 0, describe(healed)
    report = files.report("pip").read_bytes()
    history = files.history.read_bytes()
    assert len(read_report(files.report("pip"))["events"]) == 1

    doctor = run_python(
        venv,
        ["-m", "pip_cache_guard", "doctor", "--cache-dir", str(cache_dir)],
        files.env(**{REPORT_VARIABLE: str(files.report("pip"))}),
    )

    assert "Traceback" not in doctor.stderr, describe(doctor)
    assert files.report("pip").read_bytes() == report
    assert files.history.read_bytes() == history
