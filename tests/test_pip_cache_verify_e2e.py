"""``pip cache verify`` in a guarded environment, and pip's other cache subcommands untouched.

The cache is filled by real ``pip download`` runs and damaged in place; ``pip cache`` gets the
cache through pip's own ``--cache-dir``.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from support import cache
from support.guarded import GuardFiles
from support.index import LoopbackIndex
from support.runner import describe, hermetic_env, pip_download, run_pip
from support.venvs import Venv, VenvFactory, find_python
from support.wheels import DEFAULT_PACKAGES, BuiltWheel

pytestmark = pytest.mark.e2e

PROJECTS = list(DEFAULT_PACKAGES)[:2]


def filled(venv: Venv, cache_dir: Path, index: LoopbackIndex, files: GuardFiles) -> None:
    result = pip_download(venv, cache_dir, index, PROJECTS, files.env())
    assert result.returncode == 0, describe(result)


@pytest.mark.parametrize("pip", ["26.3", "21.3.1"])
def test_pip_cache_verify_finds_names_and_fixes_a_damaged_entry(
    pip: str, make_venv: VenvFactory, cache_dir: Path, index: LoopbackIndex, tmp_path: Path
) -> None:
    venv = make_venv(find_python("3.11"), pip, guard=True)
    files = GuardFiles(tmp_path)
    filled(venv, cache_dir, index, files)

    def pip_cache(*args: str) -> subprocess.CompletedProcess[str]:
        return run_pip(venv, ["cache", *args], cache_dir, None, files.env())

    helped = pip_cache("--help")
    assert "cache verify [--fix] [--json] [--digests]" in helped.stdout, describe(helped)
    assert "- verify: " in helped.stdout, describe(helped)

    clean = pip_cache("verify")
    assert clean.returncode == 0, describe(clean)
    assert str(cache_dir) in clean.stderr, describe(clean)  # pip's --cache-dir, not the default

    entry = cache.list_entries(cache_dir, legacy=pip == "21.3.1")[0]
    cache.truncate(entry, -5)
    damaged = pip_cache("verify")
    assert damaged.returncode == 1, describe(damaged)
    assert entry.name in damaged.stderr, describe(damaged)
    as_json = pip_cache("verify", "--json")
    assert as_json.returncode == 1, describe(as_json)
    assert [p["path"] for p in json.loads(as_json.stdout)["problems"]] == [str(entry)]

    fixed = pip_cache("verify", "--fix")
    assert fixed.returncode == 0, describe(fixed)
    assert not entry.exists()
    assert pip_cache("verify").returncode == 0


def test_pips_other_cache_subcommands_behave_as_without_the_guard(
    make_venv: VenvFactory,
    index: LoopbackIndex,
    guardtest_wheels: dict[str, BuiltWheel],
    tmp_path: Path,
) -> None:
    python = find_python("3.11")
    guarded, plain = make_venv(python, "26.3", guard=True), make_venv(python, "26.3", guard=False)
    files = GuardFiles(tmp_path)
    template = tmp_path / "template"
    filled(guarded, template, index, files)
    built = template / "wheels" / "ab" / "cd" / "ef"  # a locally built wheel, as pip keeps them
    built.mkdir(parents=True)
    shutil.copy(guardtest_wheels["guardtest-alpha"].path, built)
    cache.truncate(cache.list_entries(template)[0], -5)  # damage changes nothing for these
    commands = [
        ["dir"],
        ["info"],
        ["list"],
        ["list", "guardtest*", "--format=abspath"],
        ["list", "--json"],
        ["purge", "--fix"],
        ["list", "--digests"],
        ["frobnicate"],
        ["remove", "guardtest-alpha"],
        ["purge"],
        ["info"],
    ]

    def session(venv: Venv) -> list[tuple[int, str, str]]:
        cache_dir = tmp_path / "cache"
        shutil.copytree(template, cache_dir)
        try:
            seen = []
            for command in commands:
                result = run_pip(venv, ["cache", *command], cache_dir, None, files.env())
                stdout = result.stdout.replace(str(venv.path), "<venv>")
                stderr = _usage_free(result.stderr.replace(str(venv.path), "<venv>"))
                seen.append((result.returncode, stdout, stderr))
            return seen
        finally:
            shutil.rmtree(cache_dir, ignore_errors=True)

    assert session(guarded) == session(plain)


def _usage_free(stderr: str) -> str:
    """stderr without its usage block (the guarded one lists ``verify`` there, by design)."""
    kept, in_usage = [], False
    for line in stderr.splitlines():
        in_usage = line.startswith("Usage:") or (in_usage and line != "")
        if not in_usage:
            kept.append(line)
    return "\n".join(kept)


@pytest.mark.parametrize("pip", ["26.3", "21.3.1"])
def test_pip_cache_verify_with_the_cache_disabled_gives_pips_reason_whatever_the_options(
    pip: str, make_venv: VenvFactory, tmp_path: Path
) -> None:
    """``--no-cache-dir``: pip's own error (the cache is disabled), also with ``--fix``/``--json``,
    never "no such option"."""
    venv = make_venv(find_python("3.11"), pip, guard=True)
    files = GuardFiles(tmp_path)

    def pip_cache(*args: str) -> tuple[int, str, str]:
        command = ["cache", *args, "--no-cache-dir"]
        result = run_pip(venv, command, tmp_path / "c", None, files.env())
        return result.returncode, result.stdout, result.stderr

    plain = pip_cache("verify")
    assert plain[0] != 0 and "cache is disabled" in plain[2], plain
    for options in (["--fix"], ["--json"], ["--fix", "--json"]):
        assert pip_cache("verify", *options) == plain, options


@pytest.mark.parametrize("where", ["default", "elsewhere"])
def test_pip_cache_verify_advises_a_fix_that_run_as_printed_fixes_the_cache_it_checked(
    make_venv: VenvFactory, index: LoopbackIndex, tmp_path: Path, where: str
) -> None:
    """``pip --cache-dir X cache verify`` advises this pip's ``cache verify --fix``, naming X
    unless it is pip's default cache; run as printed, it fixes X."""
    venv = make_venv(find_python("3.11"), "26.3", guard=True)
    files = GuardFiles(tmp_path)
    home = tmp_path / "home"
    env = files.env(HOME=str(home), XDG_CACHE_HOME=None)
    cache_dir = home / ".cache" / "pip" if where == "default" else tmp_path / "elsewhere cache"
    filled(venv, cache_dir, index, files)
    entry = cache.list_entries(cache_dir)[0]
    cache.truncate(entry, -5)

    found = run_pip(venv, ["cache", "verify"], cache_dir, None, env)

    assert found.returncode == 1, describe(found)
    (line,) = [line for line in found.stderr.splitlines() if line.strip().startswith("run `")]
    advice = shlex.split(line.split("`")[1])
    chosen = [] if where == "default" else ["--cache-dir", str(cache_dir)]
    assert advice[-3 - len(chosen) :] == ["cache", "verify", *chosen, "--fix"], advice
    as_printed = subprocess.run(
        advice, capture_output=True, text=True, env=hermetic_env(env), timeout=120, check=False
    )
    assert as_printed.returncode == 0, describe(as_printed)
    assert not entry.exists()
