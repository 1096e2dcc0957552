"""Where pip keeps its cache, found the way pip finds it.

Precedence, lowest first, as in pip's ``Configuration``: the platform default, then the config files
(global, user, site, then the file named by ``PIP_CONFIG_FILE``), then ``PIP_CACHE_DIR``, then an
explicit ``--cache-dir``. As in pip: ``PIP_CONFIG_FILE=/dev/null`` (os.devnull) skips every config
file, an existing ``PIP_CONFIG_FILE`` hides the user's files, and empty values count as unset.
Only the ``[global]`` section is read: ``cache-dir`` is a general option.
"""

from __future__ import annotations

import configparser
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import platformdirs

HTTP_DIR = "http-v2"  # pip 23.3+
LEGACY_HTTP_DIR = "http"  # pip up to 23.2; pip 23.3+ never reads it
WHEELS_DIR = "wheels"
_CONFIG_NAME = "pip.ini" if sys.platform == "win32" else "pip.conf"


@dataclass(frozen=True)
class CacheLocation:
    """pip's cache root, where the setting came from, and whether pip would use it at all."""

    root: str
    source: str
    disabled: bool

    @property
    def http_dir(self) -> str:
        return os.path.join(self.root, HTTP_DIR)

    @property
    def legacy_http_dir(self) -> str:
        return os.path.join(self.root, LEGACY_HTTP_DIR)

    @property
    def wheels_dir(self) -> str:
        return os.path.join(self.root, WHEELS_DIR)


def installed_pip_version() -> str | None:
    """The version of the pip installed beside us, if any (from its metadata: nothing imported)."""
    try:
        from importlib.metadata import version

        return version("pip")
    except Exception:
        return None


def legacy_dir_is_stale() -> bool:
    """Whether ``http/`` is never read here: pip 23.3+ uses ``http-v2/`` only (so does no pip)."""
    pip_version = installed_pip_version()
    if pip_version is None:
        return True
    try:
        major, minor = (int(part) for part in pip_version.split(".")[:2])
    except ValueError:
        return True
    return (major, minor) >= (23, 3)


def default_cache_dir() -> str:
    """pip's default: ``platformdirs.user_cache_dir("pip")`` (~/.cache/pip on Linux)."""
    return platformdirs.user_cache_dir("pip", appauthor=False)


def locate(explicit: str | None = None, environ: Mapping[str, str] | None = None) -> CacheLocation:
    """The cache directory pip would use in this environment."""
    environ = os.environ if environ is None else environ
    settings = _global_settings(_config_files(environ))
    # pip ignores empty values, and any other value of no-cache-dir (even "false") disables.
    disabled = bool(environ.get("PIP_NO_CACHE_DIR")) or bool(settings.get("no-cache-dir"))
    if explicit:
        return CacheLocation(_normalize(explicit), "--cache-dir", disabled)
    if environ.get("PIP_CACHE_DIR"):
        return CacheLocation(_normalize(environ["PIP_CACHE_DIR"]), "PIP_CACHE_DIR", disabled)
    value, path = settings.get("cache-dir", ("", ""))
    if value:
        return CacheLocation(_normalize(value), f"config file {path}", disabled)
    return CacheLocation(_normalize(default_cache_dir()), "default", disabled)


def _normalize(path: str) -> str:
    """pip's ``normalize_path`` without resolving links: ~ expanded, absolute."""
    return os.path.abspath(os.path.expanduser(path))


def _config_files(environ: Mapping[str, str]) -> list[str]:
    """Config files in pip's override order (later wins), as pip's ``iter_config_files``."""
    named = environ.get("PIP_CONFIG_FILE")
    if named == os.devnull:
        return []
    global_dirs = platformdirs.site_config_dir("pip", appauthor=False, multipath=True)
    files = [os.path.join(directory, _CONFIG_NAME) for directory in global_dirs.split(os.pathsep)]
    if sys.platform.startswith("linux"):
        files.append(os.path.join("/etc", _CONFIG_NAME))
    if not (named and os.path.exists(named)):  # pip skips user files when PIP_CONFIG_FILE exists
        if sys.platform != "win32":
            files.append(os.path.join(os.path.expanduser("~"), ".pip", _CONFIG_NAME))
        user_dir = platformdirs.user_config_dir("pip", appauthor=False, roaming=True)
        files.append(os.path.join(user_dir, _CONFIG_NAME))
    files.append(os.path.join(sys.prefix, _CONFIG_NAME))
    if named:
        files.append(named)
    return files


def _global_settings(paths: Iterable[str]) -> dict[str, tuple[str, str]]:
    """``[global]`` options of these files merged (later wins): name -> (value, file)."""
    settings: dict[str, tuple[str, str]] = {}
    for path in paths:
        if not os.path.isfile(path):
            continue
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, OSError, UnicodeDecodeError):
            continue  # pip would refuse to run; we just ignore the file
        if parser.has_section("global"):
            for name, value in parser.items("global"):
                settings[name.replace("_", "-")] = (value.strip(), path)
    return settings
