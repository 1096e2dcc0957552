"""Finding pip's cache directory the way pip 26.3 does, without running pip.

Every test gets a private ``HOME``, ``XDG_*`` directories and ``sys.prefix``, so platformdirs (which
reads ``os.environ``) sees only the config files the test writes. The pip-specific variables are
passed to ``locate`` as its ``environ`` argument. ``tests/test_cli_e2e.py`` checks the same rules
against the output of a real ``pip cache dir``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs
import pytest

from pip_cache_guard.locate import HTTP_DIR, LEGACY_HTTP_DIR, WHEELS_DIR, locate, tool_caches

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the paths below are Linux's")


class Dirs:
    """The directories of one test's private world."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.xdg_config_dirs = root / "etc-xdg"
        self.prefix = root / "prefix"
        for directory in (self.home, self.xdg_config_dirs, self.prefix):
            directory.mkdir(parents=True)

    @property
    def default(self) -> str:
        return str(self.home / ".cache" / "pip")

    @property
    def user_config(self) -> Path:
        return self.home / ".config" / "pip" / "pip.conf"

    @property
    def legacy_user_config(self) -> Path:
        return self.home / ".pip" / "pip.conf"

    @property
    def global_config(self) -> Path:
        return self.xdg_config_dirs / "pip" / "pip.conf"

    @property
    def site_config(self) -> Path:
        return self.prefix / "pip.conf"

    def cache(self, name: str) -> str:
        return str(self.root / name)


def write_config(
    path: Path, cache_dir: str, section: str = "global", key: str = "cache-dir"
) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"[{section}]\n{key} = {cache_dir}\n")
    return str(path)


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Dirs:
    world = Dirs(tmp_path)
    for name in list(os.environ):
        if name.startswith(("PIP_", "XDG_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(world.home))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(world.xdg_config_dirs))
    monkeypatch.setattr(sys, "prefix", str(world.prefix))
    monkeypatch.chdir(tmp_path)
    return world


# -- the default ---------------------------------------------------------------------------------


def test_default_is_the_user_cache_dir(dirs: Dirs) -> None:
    location = locate(environ={})
    assert location.root == dirs.default
    assert location.source == "default"
    assert location.disabled is False


def test_default_follows_xdg_cache_home(dirs: Dirs, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", dirs.cache("xdg"))
    assert locate(environ={}).root == os.path.join(dirs.cache("xdg"), "pip")


def test_relative_xdg_cache_home_is_ignored_like_pip_26_3(
    dirs: Dirs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/xdg")
    assert locate(environ={}).root == dirs.default


def test_subdirectories(dirs: Dirs) -> None:
    location = locate(dirs.cache("c"), environ={})
    assert location.http_dir == os.path.join(dirs.cache("c"), HTTP_DIR)
    assert location.legacy_http_dir == os.path.join(dirs.cache("c"), LEGACY_HTTP_DIR)
    assert location.wheels_dir == os.path.join(dirs.cache("c"), WHEELS_DIR)
    assert (HTTP_DIR, LEGACY_HTTP_DIR, WHEELS_DIR) == ("http-v2", "http", "wheels")


# -- precedence ----------------------------------------------------------------------------------


def test_explicit_beats_everything(dirs: Dirs) -> None:
    named = write_config(dirs.root / "named.conf", dirs.cache("from-named"))
    write_config(dirs.user_config, dirs.cache("from-user"))
    environ = {"PIP_CACHE_DIR": dirs.cache("from-env"), "PIP_CONFIG_FILE": named}

    location = locate(dirs.cache("explicit"), environ)

    assert location.root == dirs.cache("explicit")
    assert location.source == "--cache-dir"


def test_pip_cache_dir_beats_config_files(dirs: Dirs) -> None:
    named = write_config(dirs.root / "named.conf", dirs.cache("from-named"))
    environ = {"PIP_CACHE_DIR": dirs.cache("from-env"), "PIP_CONFIG_FILE": named}

    location = locate(environ=environ)

    assert location.root == dirs.cache("from-env")
    assert location.source == "PIP_CACHE_DIR"


def test_pip_config_file_beats_the_default(dirs: Dirs) -> None:
    named = write_config(dirs.root / "named.conf", dirs.cache("from-named"))
    location = locate(environ={"PIP_CONFIG_FILE": named})
    assert location.root == dirs.cache("from-named")
    assert location.source == f"config file {named}"


def test_config_files_override_in_pip_order(dirs: Dirs) -> None:
    """global < legacy user < user < site (sys.prefix) < PIP_CONFIG_FILE, one layer at a time."""
    layers = [
        (dirs.global_config, "from-global"),
        (dirs.legacy_user_config, "from-legacy-user"),
        (dirs.user_config, "from-user"),
        (dirs.site_config, "from-site"),
    ]
    for path, name in layers:
        write_config(path, dirs.cache(name))
        # a PIP_CONFIG_FILE that does not exist hides nothing
        environ = {"PIP_CONFIG_FILE": str(dirs.root / "missing.conf")}
        assert locate(environ=environ).root == dirs.cache(name), name

    named = write_config(dirs.root / "named.conf", dirs.cache("from-named"))
    assert locate(environ={"PIP_CONFIG_FILE": named}).root == dirs.cache("from-named")


def test_a_config_file_without_cache_dir_does_not_hide_an_earlier_one(dirs: Dirs) -> None:
    write_config(dirs.global_config, dirs.cache("from-global"))
    dirs.site_config.write_text("[global]\ntimeout = 30\n")
    assert locate(environ={}).root == dirs.cache("from-global")


def test_global_then_cache_sections_count_as_for_pip_cache_dir(dirs: Dirs) -> None:
    write_config(dirs.user_config, dirs.cache("from-install"), section="install")
    assert locate(environ={}).root == dirs.default  # pip install's own: pip cache dir ignores it
    write_config(dirs.user_config, dirs.cache("underscored"), key="cache_dir")
    assert locate(environ={}).root == dirs.cache("underscored")
    dirs.site_config.write_text(f"[cache]\ncache-dir = {dirs.cache('from-cache')}\n")
    write_config(dirs.root / "named.conf", dirs.cache("from-named"))  # [global]: applied first
    location = locate(environ={"PIP_CONFIG_FILE": str(dirs.root / "named.conf")})
    assert location.root == dirs.cache("from-cache")
    assert location.source == f"config file {dirs.site_config}"


def test_broken_config_file_is_ignored(dirs: Dirs) -> None:
    write_config(dirs.global_config, dirs.cache("from-global"))
    dirs.user_config.parent.mkdir(parents=True)
    dirs.user_config.write_bytes(b"cache-dir = no section header\n\xff\xfe")
    assert locate(environ={}).root == dirs.cache("from-global")


def test_pip_config_file_devnull_ignores_every_config_file(dirs: Dirs) -> None:
    for path, name in [
        (dirs.global_config, "g"),
        (dirs.user_config, "u"),
        (dirs.legacy_user_config, "l"),
        (dirs.site_config, "s"),
    ]:
        write_config(path, dirs.cache(name))
    assert locate(environ={"PIP_CONFIG_FILE": os.devnull}).root == dirs.default
    environ = {"PIP_CONFIG_FILE": os.devnull, "PIP_CACHE_DIR": dirs.cache("env")}
    assert locate(environ=environ).root == dirs.cache("env")


def test_existing_pip_config_file_hides_the_user_config(dirs: Dirs) -> None:
    write_config(dirs.user_config, dirs.cache("from-user"))
    named = dirs.root / "named.conf"
    named.write_text("[global]\ntimeout = 30\n")
    assert locate(environ={"PIP_CONFIG_FILE": str(named)}).root == dirs.default


def test_empty_cache_dir_in_a_config_file_is_not_the_current_directory(dirs: Dirs) -> None:
    dirs.user_config.parent.mkdir(parents=True)
    dirs.user_config.write_text("[global]\ncache-dir =\n")
    assert locate(environ={}).root == dirs.default


# -- paths ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["explicit", "env", "config"])
def test_tilde_is_expanded(dirs: Dirs, how: str) -> None:
    environ: dict[str, str] = {}
    explicit = None
    if how == "explicit":
        explicit = "~/tilde"
    elif how == "env":
        environ["PIP_CACHE_DIR"] = "~/tilde"
    else:
        environ["PIP_CONFIG_FILE"] = write_config(dirs.root / "named.conf", "~/tilde")
    assert locate(explicit, environ).root == str(dirs.home / "tilde")


def test_relative_paths_are_made_absolute(dirs: Dirs) -> None:
    assert locate("rel/cache", {}).root == str(dirs.root / "rel" / "cache")
    assert locate(environ={"PIP_CACHE_DIR": "rel/env"}).root == str(dirs.root / "rel" / "env")


def test_empty_pip_cache_dir_is_ignored(dirs: Dirs) -> None:
    assert locate(environ={"PIP_CACHE_DIR": ""}).root == dirs.default


def test_a_linked_cache_dir_is_not_resolved(dirs: Dirs) -> None:
    real = dirs.root / "real"
    real.mkdir()
    link = dirs.root / "link"
    link.symlink_to(real, target_is_directory=True)
    assert locate(str(link), {}).root == str(link)


# -- PIP_NO_CACHE_DIR ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1", "true", "off", "0", "no"])
def test_pip_no_cache_dir_with_any_value_sets_disabled(dirs: Dirs, value: str) -> None:
    location = locate(environ={"PIP_NO_CACHE_DIR": value})
    assert location.disabled is True
    assert location.root == dirs.default  # still named, so that verify can check what is there
    assert locate(dirs.cache("c"), {"PIP_NO_CACHE_DIR": value}).disabled is True


def test_cache_is_enabled_without_pip_no_cache_dir(dirs: Dirs) -> None:
    assert locate(environ={"PIP_CACHE_DIR": dirs.cache("c")}).disabled is False


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_no_cache_dir_in_a_config_file_leaves_the_cache_on(dirs: Dirs, value: str) -> None:
    """pip drops empty values before its --no-cache-dir callback sees them."""
    dirs.user_config.parent.mkdir(parents=True)
    dirs.user_config.write_text(f"[global]\nno-cache-dir ={value}\n")
    assert locate(environ={}).disabled is False


def test_no_cache_dir_in_a_config_file_disables_whatever_its_value(dirs: Dirs) -> None:
    dirs.user_config.parent.mkdir(parents=True)
    dirs.user_config.write_text("[global]\nno-cache-dir = false\n")
    location = locate(environ={})
    assert location.disabled is True
    assert location.disabled_by == f"config file {dirs.user_config}"


def test_the_later_of_cache_dir_and_no_cache_dir_wins_as_in_pips_parser(dirs: Dirs) -> None:
    dirs.user_config.parent.mkdir(parents=True)
    dirs.user_config.write_text("[global]\nno-cache-dir = 1\n")
    # The environment is applied after the config files: its cache-dir turns the cache back on.
    location = locate(environ={"PIP_CACHE_DIR": dirs.cache("env")})
    assert (location.root, location.disabled) == (dirs.cache("env"), False)
    dirs.user_config.write_text(f"[global]\ncache-dir = {dirs.cache('c')}\n")
    location = locate(environ={"PIP_NO_CACHE_DIR": "1"})
    assert (location.root, location.disabled_by) == (dirs.cache("c"), "PIP_NO_CACHE_DIR")


# -- other platforms, simulated: pip's utils/appdirs.py rules --------------------------------------


@pytest.fixture
def macos(dirs: Dirs, monkeypatch: pytest.MonkeyPatch) -> Path:
    """sys.platform is darwin; platformdirs answers as it does on macOS (user config and data
    dirs are both Application Support). Returns the Application Support pip directory."""
    support = dirs.home / "Library" / "Application Support" / "pip"
    monkeypatch.setattr(sys, "platform", "darwin")
    for name in ("user_config_dir", "user_data_dir"):
        monkeypatch.setattr(platformdirs, name, lambda *args, **kwargs: str(support))
    for name in ("site_config_dir", "site_data_dir"):
        monkeypatch.setattr(platformdirs, name, lambda *a, **k: str(dirs.root / "Library" / "pip"))
    return support


def test_macos_reads_dot_config_unless_application_support_exists(dirs: Dirs, macos: Path) -> None:
    write_config(dirs.user_config, dirs.cache("from-dot-config"))  # ~/.config/pip/pip.conf

    assert locate(environ={}).root == dirs.cache("from-dot-config")

    macos.mkdir(parents=True)  # pip now reads the user file from here, and only from here
    assert locate(environ={}).root == dirs.default
    write_config(macos / "pip.conf", dirs.cache("from-application-support"))
    assert locate(environ={}).root == dirs.cache("from-application-support")


def test_macos_site_files_come_from_the_site_data_dir(dirs: Dirs, macos: Path) -> None:
    write_config(dirs.root / "Library" / "pip" / "pip.conf", dirs.cache("from-site"))
    assert locate(environ={}).root == dirs.cache("from-site")


def test_windows_reads_the_legacy_user_pip_ini(dirs: Dirs, monkeypatch: pytest.MonkeyPatch) -> None:
    roaming = dirs.home / "AppData" / "Roaming" / "pip"
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(platformdirs, "user_config_dir", lambda *a, **k: str(roaming))
    monkeypatch.setattr(platformdirs, "site_config_dir", lambda *a, **k: str(dirs.root / "pd"))
    write_config(dirs.home / "pip" / "pip.ini", dirs.cache("from-legacy"))  # %USERPROFILE%\pip

    assert locate(environ={}).root == dirs.cache("from-legacy")

    write_config(roaming / "pip.ini", dirs.cache("from-roaming"))  # the newer file wins
    assert locate(environ={}).root == dirs.cache("from-roaming")
    write_config(dirs.root / "pd" / "pip.ini", dirs.cache("from-site"))  # the global one loses
    assert locate(environ={}).root == dirs.cache("from-roaming")


# -- other tools' caches (verify --all) ----------------------------------------------------------


def test_tool_caches_are_found_where_each_tool_looks_by_default(dirs: Dirs) -> None:
    repositories = dirs.home / ".cache" / "pypoetry" / "cache" / "repositories"
    for source, http in [("PyPI", "_http_"), ("PyPI", "_http"), ("private", "_http_")]:
        (repositories / source / http).mkdir(parents=True)
    (repositories / "no-http-yet").mkdir()

    found = [(c.tool, c.path, c.source) for c in tool_caches({})]

    cache = dirs.home / ".cache"
    assert found == [
        ("pip", str(cache / "pip"), "default"),
        ("pip-tools", str(cache / "pip-tools"), "default"),
        ("pipenv", str(cache / "pipenv"), "default"),
        ("poetry (PyPI)", str(repositories / "PyPI" / "_http_"), "default"),
        ("poetry (PyPI)", str(repositories / "PyPI" / "_http"), "default"),
        ("poetry (private)", str(repositories / "private" / "_http_"), "default"),
        ("pip-audit", str(cache / "pip-audit"), "default"),
    ]


def test_the_cache_of_conda_locks_vendored_poetry_is_listed_where_it_has_one(dirs: Dirs) -> None:
    """conda-lock 4's Poetry keeps its caches under ``pypoetry-conda-lock``, not ``pypoetry``."""
    assert not [c for c in tool_caches({}) if c.tool.startswith("conda-lock")]
    http = dirs.home / ".cache" / "pypoetry-conda-lock" / "cache" / "repositories" / "f00" / "_http"
    http.mkdir(parents=True)

    found = [(c.tool, c.path, c.source) for c in tool_caches({})]

    assert found[-1] == ("conda-lock (f00)", str(http), "default")


def test_tool_caches_follow_each_tools_variables_and_poetrys_config(dirs: Dirs) -> None:
    pytest.importorskip("tomllib", reason="Poetry's config.toml is read on Python 3.11+")
    poetry_config = dirs.root / "poetry-config"
    poetry_config.mkdir()
    (poetry_config / "config.toml").write_text(f'cache-dir = "{dirs.cache("poetry")}"\n')
    environ = {
        "PIP_CACHE_DIR": dirs.cache("pip"),
        "PIP_TOOLS_CACHE_DIR": dirs.cache("pip-tools"),
        "PIPENV_CACHE_DIR": dirs.cache("pip"),  # the same as pip's: listed once
        "POETRY_CONFIG_DIR": str(poetry_config),
    }

    found = {c.tool: (c.path, c.source) for c in tool_caches(environ)}

    assert found["pip"] == (dirs.cache("pip"), "PIP_CACHE_DIR")
    assert found["pip-tools"] == (dirs.cache("pip-tools"), "PIP_TOOLS_CACHE_DIR")
    assert "pipenv" not in found
    poetry_source = f"config file {poetry_config / 'config.toml'}"
    assert found["poetry"] == (
        os.path.join(dirs.cache("poetry"), "cache", "repositories"),
        poetry_source,
    )
    environ["POETRY_CACHE_DIR"] = dirs.cache("elsewhere")
    assert {c.tool: c.source for c in tool_caches(environ)}["poetry"] == "POETRY_CACHE_DIR"
