"""Running pip (or any Python) inside a test venv, hermetically.

The machine has pip settings in the environment and in config files (find-links, extra indexes,
a constraint file, a CA bundle). Any of them would change which URLs pip fetches and so which cache
entries exist, so every run starts from the environment minus all ``PIP_*`` (which also drops
``PIP_CACHE_GUARD*``), with config files switched off. A test puts back what it means to set
through ``extra_env``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Union

from .reports import REPORT_VARIABLE, REPORTS

if TYPE_CHECKING:
    from .index import LoopbackIndex
    from .venvs import Venv

PIP_TIMEOUT = 120.0
TRUSTED_HOST = "127.0.0.1"

# Variables that would make the child Python import or configure something else.
_DROPPED = {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "VIRTUAL_ENV"}

ExtraEnv = Mapping[str, Union[str, None]]


def hermetic_env(extra_env: ExtraEnv | None = None) -> dict[str, str]:
    """``os.environ`` without ``PIP_*`` and import-steering variables, pip config disabled.

    ``extra_env`` is applied last: a value sets a variable, ``None`` removes it.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PIP_") and key not in _DROPPED
    }
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    for key, value in (extra_env or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    REPORTS.watch(env)
    return env


def run_python(
    venv: Venv,
    args: Sequence[str],
    extra_env: ExtraEnv | None = None,
    *,
    timeout: float = PIP_TIMEOUT,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """``<venv>/bin/python *args`` in the hermetic environment; output captured as text.

    The report the run wrote, if any, is checked against its schema (``support.reports``)."""
    env = hermetic_env(extra_env)
    result = subprocess.run(
        [str(venv.python), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        env=env,
        cwd=cwd,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    REPORTS.check(env.get(REPORT_VARIABLE))
    return result


def run_pip(
    venv: Venv,
    args: Sequence[str],
    cache_dir: Path,
    index: LoopbackIndex | str | None,
    extra_env: ExtraEnv | None = None,
    *,
    timeout: float = PIP_TIMEOUT,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """``python -m pip <command> --cache-dir C [--index-url U --trusted-host 127.0.0.1] ...``.

    ``args[0]`` is the pip command. ``index`` (a ``LoopbackIndex`` or a URL) is left out for
    commands without an index (``pip cache ...``); ``--trusted-host`` is what makes pip cache
    anything from a plain ``http://`` index. Never raises on a non-zero exit: tests assert
    ``returncode`` themselves (pip exits 2 on some damaged entries, and that is the point).
    """
    if not args:
        raise ValueError("args must start with a pip command")
    command, *rest = args
    options = ["--cache-dir", str(cache_dir)]
    if index is not None:
        url = index if isinstance(index, str) else index.url
        options += ["--index-url", url, "--trusted-host", TRUSTED_HOST]
    return run_python(
        venv, ["-m", "pip", command, *options, *rest], extra_env, timeout=timeout, cwd=cwd
    )


def pip_download(
    venv: Venv,
    cache_dir: Path,
    index: LoopbackIndex | str,
    projects: Sequence[str],
    extra_env: ExtraEnv | None = None,
    *,
    dest: Path | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = PIP_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """``pip download --no-deps -d <dest> *projects`` (dest: a throwaway dir unless given).

    Downloading exercises exactly the cache paths an install does, without touching the venv.
    """
    scratch = None
    if dest is None:
        scratch = tempfile.mkdtemp(prefix="pip-download-")
        dest = Path(scratch)
    try:
        args = ["download", "--no-deps", "--progress-bar", "off", "-d", str(dest)]
        return run_pip(
            venv, [*args, *extra_args, *projects], cache_dir, index, extra_env, timeout=timeout
        )
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def describe(result: subprocess.CompletedProcess[str]) -> str:
    """Command, exit code and both streams: the message to attach to a failed assertion."""
    cmd = " ".join(str(part) for part in result.args)
    return (
        f"$ {cmd}\n[exit {result.returncode}]\n"
        f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    )
