"""Running a command as an unprivileged user, so that file permissions mean something.

Tests (and CI) run as root here, and root ignores directory permissions: a "read-only cache" is
only read-only for somebody else.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

UNPRIVILEGED = "nobody"


def run_unprivileged(
    command: Sequence[str], env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` as ``nobody`` when we are root, as ourselves otherwise."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: cannot drop privileges")
        prefix = [setpriv, f"--reuid={UNPRIVILEGED}", "--regid=nogroup", "--clear-groups"]
    return subprocess.run(
        [*prefix, *command], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )


def world_readable_tmp() -> Iterator[Path]:
    """A temporary directory the unprivileged user can enter (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="pcg-shared-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
