"""Fetching URLs through standalone CacheControl with requests, as Poetry and pip-audit do."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pip_cache_guard import entries

from . import cache
from .runner import ExtraEnv, run_python
from .venvs import Venv

# argv: "separate" (SeparateBodyFileCache) or "inside" (FileCache), the directory, the URLs.
# Prints, per URL: the URL, the body's length, and whether the response came from the cache
# (and the body's sha256 where FETCH_SHA256 is set in the environment).
FETCH = """
import hashlib, os, sys, requests
from cachecontrol import CacheControl
from cachecontrol.caches import FileCache, SeparateBodyFileCache
kind, directory, *urls = sys.argv[1:]
cache = (SeparateBodyFileCache if kind == "separate" else FileCache)(directory)
session = CacheControl(requests.Session(), cache=cache)
for url in urls:
    response = session.get(url)
    response.raise_for_status()
    digest = hashlib.sha256(response.content).hexdigest() if os.environ.get("FETCH_SHA256") else ""
    print(url, len(response.content), response.from_cache, digest)
"""


def fetch(
    venv: Venv, tmp_path: Path, kind: str, directory: Path, urls: list[str], env: ExtraEnv
) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "fetch.py"
    script.write_text(FETCH)
    return run_python(venv, [str(script), kind, str(directory), *urls], env)


def entry_of(directory: Path, url: str) -> Path:
    """Where CacheControl keeps ``url`` in ``directory``."""
    return Path(entries.entry_path(str(directory), cache.cache_key(url)))
