"""Where pip keeps its cache, found the way pip finds it.

As in pip's ``Configuration`` and its option parser: config files are read in pip's override order
(global, user, site, then the file named by ``PIP_CONFIG_FILE``; the later file wins), the
``[global]`` section and then the ``[cache]`` section (the command's own section, as for
``pip cache dir``), then the ``PIP_*`` environment; an explicit ``--cache-dir`` beats them all.
Empty values count as unset. ``PIP_CONFIG_FILE=/dev/null`` (os.devnull) skips every config file,
an existing ``PIP_CONFIG_FILE`` hides the user's files. Where the files are follows pip's
``utils/appdirs.py`` (the same from pip 21.3 to 26.3): on macOS the user file is
``~/Library/Application Support/pip/pip.conf`` only if that directory exists, else
``~/.config/pip/pip.conf``; Windows also has the legacy ``%USERPROFILE%\\pip\\pip.ini``.
"""

from __future__ import annotations

import configparser
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

import platformdirs

HTTP_DIR = "http-v2"  # pip 23.3+
LEGACY_HTTP_DIR = "http"  # pip up to 23.2; pip 23.3+ never reads it
WHEELS_DIR = "wheels"
# Sections whose options pip applies, in order: general options, then the command's own section.
# ``cache`` is ``pip cache``'s: the cache ``pip cache dir`` names. A cache-dir set only for one
# command ([install], [download], [wheel]) applies to that command alone (docs/limits.md).
SECTIONS = ("global", "cache")
_ENV_NAMES_IGNORED = ("version", "help")  # as pip's configuration


@dataclass(frozen=True)
class CacheLocation:
    """pip's cache root, where the setting came from, and whether pip would use it at all."""

    root: str
    source: str
    disabled: bool
    disabled_by: str = ""  # where no-cache-dir was set, when ``disabled``

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
    """The cache directory pip would use in this environment, and whether pip's cache is on."""
    environ = os.environ if environ is None else environ
    root, source = _normalize(default_cache_dir()), "default"
    disabled_by = ""
    for name, value, origin in _settings(environ):
        # As pip's option parser: both options set one destination, so the later one wins; any
        # value of no-cache-dir (even "false") disables the cache.
        if name == "cache-dir":
            root, source, disabled_by = _normalize(value), origin, ""
        elif name == "no-cache-dir":
            disabled_by = origin
    if explicit:
        root, source = _normalize(explicit), "--cache-dir"
    return CacheLocation(root, source, bool(disabled_by), disabled_by)


def _normalize(path: str) -> str:
    """pip's ``normalize_path`` without resolving links: ~ expanded, absolute."""
    return os.path.abspath(os.path.expanduser(path))


def _settings(environ: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """(option, value, where it was set) in the order pip applies them; empty values dropped.

    Within a section, options come in the order they first appear across the files (a later file
    replaces the value, not the position), as pip's merged configuration dictionary has them.
    """
    sections: dict[str, dict[str, tuple[str, str]]] = {name: {} for name in (*SECTIONS, ":env:")}
    for path in _config_files(environ):
        for section, name, value in _read_config(path):
            if section in sections:
                sections[section][name] = (value, f"config file {path}")
    for variable, value in environ.items():
        if variable.startswith("PIP_") and variable[4:].lower() not in _ENV_NAMES_IGNORED:
            sections[":env:"][_option_name(variable[4:])] = (value, variable)
    return [
        (name, value, origin)
        for options in sections.values()
        for name, (value, origin) in options.items()
        if value
    ]


def _option_name(name: str) -> str:
    """pip's ``_normalize_name``: the same option from a file or the environment."""
    name = name.lower().replace("_", "-")
    return name[2:] if name.startswith("--") else name


def _config_name() -> str:
    # Windows and macOS branches in this and the next three functions: written to the
    # documentation (pip's own appdirs), run only in the forge's workflow.
    return "pip.ini" if sys.platform.startswith("win") else "pip.conf"


def _config_files(environ: Mapping[str, str]) -> list[str]:
    """Config files in pip's override order (later wins): ``get_configuration_files`` and
    ``iter_config_files`` of pip's configuration module."""
    named = environ.get("PIP_CONFIG_FILE")
    if named == os.devnull:
        return []
    name = _config_name()
    files = [os.path.join(directory, name) for directory in _site_config_dirs()]
    if not (named and os.path.exists(named)):  # pip skips user files when PIP_CONFIG_FILE exists
        legacy = "pip" if sys.platform.startswith("win") else ".pip"
        files.append(os.path.join(os.path.expanduser("~"), legacy, name))
        files.append(os.path.join(_user_config_dir(), name))
    files.append(os.path.join(sys.prefix, name))
    if named:
        files.append(named)
    return files


def _site_config_dirs() -> list[str]:
    """pip's ``appdirs.site_config_dirs``."""
    if sys.platform == "darwin":  # platformdirs' site config and data dirs agree on macOS
        return platformdirs.site_data_dir("pip", appauthor=False, multipath=True).split(os.pathsep)
    directories = platformdirs.site_config_dir("pip", appauthor=False, multipath=True)
    if sys.platform == "win32":
        return [directories]
    return [*directories.split(os.pathsep), "/etc"]


def _user_config_dir() -> str:
    """pip's ``appdirs.user_config_dir``: on macOS, ``~/Library/Application Support/pip`` only
    when it exists, else the Linux-like ``~/.config/pip``."""
    if sys.platform == "darwin":
        application_support = platformdirs.user_data_dir("pip", appauthor=False, roaming=True)
        if os.path.isdir(application_support):
            return application_support
        return os.path.expanduser(os.path.join("~", ".config", "pip"))
    return platformdirs.user_config_dir("pip", appauthor=False, roaming=True)


def _read_config(path: str) -> list[tuple[str, str, str]]:
    """(section, option, value) of one config file; nothing if it is missing or broken."""
    if not os.path.isfile(path):
        return []
    parser = configparser.RawConfigParser()
    parser.optionxform = _option_name  # type: ignore[assignment,method-assign]
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return []  # pip would refuse to run; we just ignore the file
    return [
        (section, name, value.strip())
        for section in parser.sections()
        for name, value in parser.items(section)
    ]


@dataclass(frozen=True)
class ToolCache:
    """A cache another tool (or pip) keeps: a pip cache root or a CacheControl directory."""

    tool: str
    path: str
    source: str


def tool_caches(environ: Mapping[str, str] | None = None) -> list[ToolCache]:
    """The caches of pip, pip-tools, pipenv, Poetry and pip-audit, where each tool would look
    (its variable, else its default); Poetry's per source. Existing or not; each path once. Also
    those of the Poetry conda-lock vendors, where it has some."""
    environ = os.environ if environ is None else environ
    pip = locate(None, environ)
    found = [
        ToolCache("pip", pip.root, pip.source),
        _from_variable("pip-tools", "PIP_TOOLS_CACHE_DIR", "pip-tools", environ),
        _from_variable("pipenv", "PIPENV_CACHE_DIR", "pipenv", environ),
        *_poetry_caches(environ),
        ToolCache("pip-audit", _normalize(_user_cache_dir("pip-audit")), "default"),
        *_poetry_caches(environ, "conda-lock", CONDA_LOCK_POETRY),
    ]
    unique: dict[str, ToolCache] = {}
    for cache in found:
        unique.setdefault(os.path.realpath(cache.path), cache)
    return list(unique.values())


def _user_cache_dir(name: str) -> str:
    return platformdirs.user_cache_dir(name, appauthor=False)


def _from_variable(tool: str, variable: str, name: str, environ: Mapping[str, str]) -> ToolCache:
    if environ.get(variable):
        return ToolCache(tool, _normalize(environ[variable]), variable)
    return ToolCache(tool, _normalize(_user_cache_dir(name)), "default")


# The name conda-lock 4's vendored Poetry gives its directories (cache, config), not Poetry's own.
CONDA_LOCK_POETRY = "pypoetry-conda-lock"


def _poetry_caches(
    environ: Mapping[str, str], tool: str = "poetry", app: str = "pypoetry"
) -> list[ToolCache]:
    """Poetry's HTTP caches: ``<cache-dir>/cache/repositories/<source>/_http_`` (2.4+) or
    ``_http`` (2.0 - 2.3); ``cache-dir`` from POETRY_CACHE_DIR, its config.toml, or default.
    ``app`` names the directories of a vendored Poetry (conda-lock's), listed only if it has
    some."""
    root, source = _poetry_cache_dir(environ, app)
    repositories = os.path.join(root, "cache", "repositories")
    try:
        sources = sorted(os.listdir(repositories))
    except OSError:
        return [ToolCache(tool, repositories, source)] if app == "pypoetry" else []
    return [
        ToolCache(f"{tool} ({name})", os.path.join(repositories, name, http), source)
        for name in sources
        for http in ("_http_", "_http")
        if os.path.isdir(os.path.join(repositories, name, http))
    ]


def _poetry_cache_dir(environ: Mapping[str, str], app: str) -> tuple[str, str]:
    if environ.get("POETRY_CACHE_DIR"):
        return _normalize(environ["POETRY_CACHE_DIR"]), "POETRY_CACHE_DIR"
    config_dir = environ.get("POETRY_CONFIG_DIR") or platformdirs.user_config_dir(
        app, appauthor=False, roaming=True
    )
    config = os.path.join(config_dir, "config.toml")
    value = _toml_string(config, "cache-dir")
    if value:
        return _normalize(value), f"config file {config}"
    return _normalize(_user_cache_dir(app)), "default"


def _toml_string(path: str, key: str) -> str | None:
    """A top-level string of a TOML file (Python 3.11+; earlier, config files are not read)."""
    try:
        import tomllib

        with open(path, "rb") as stream:
            value = tomllib.load(stream).get(key)
    except (ImportError, OSError, ValueError):
        return None
    return value if isinstance(value, str) else None
