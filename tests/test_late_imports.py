"""No import the guard does inside pip may come after pip's import barrier (pip 26.1+, issue 7).

pip 26.1 and 26.2 print a DEPRECATION line for every import once an installation started, 26.3
refuses it. So a function-level import in any module that can run inside pip must name a module of
``hook.LATE_MODULES`` (imported right before the barrier) or one of ``BEFORE_ANY_BARRIER`` below
(``OUTSIDE_ANY_INSTALLATION``: what only a pip command that installs nothing imports).
This reads the package's source, so a lazy import added tomorrow fails here, not in a user's pip.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pip_cache_guard import _import_hook, hook

PACKAGE = "pip_cache_guard"
SOURCE = Path(__file__).resolve().parent.parent / PACKAGE
# Function-level imports that are safe inside pip, and why.
BEFORE_ANY_BARRIER = {
    f"{PACKAGE}._import_hook": "the finder imports it with the first watched module, and pip "
    "imports every watched module before its barrier (the barrier lives in one of them)",
}
# Modules an integration imports only for a pip command that starts no installation (so meets no
# barrier) and never runs in a build environment: the walk does not enter them.
OUTSIDE_ANY_INSTALLATION = {
    f"{PACKAGE}.cli": "`pip cache verify` (integrations.cache_command) runs the guard's own "
    "`verify`; pip's cache command installs nothing and no build environment runs it",
}


def _module_path(name: str) -> Path | None:
    """The source file of one of the guard's modules, None for anything else."""
    if name != PACKAGE and not name.startswith(f"{PACKAGE}."):
        return None
    parts = name.split(".")[1:]
    package = SOURCE.joinpath(*parts, "__init__.py")
    return package if package.is_file() else SOURCE.joinpath(*parts).with_suffix(".py")


def _imported(node: ast.Import | ast.ImportFrom) -> list[str]:
    """The modules an import statement imports (``from pkg import sub``: ``pkg.sub``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    assert node.level == 0 and node.module, ast.unparse(node)  # the package imports absolutely
    submodules = [
        f"{node.module}.{alias.name}"
        for alias in node.names
        if (path := _module_path(f"{node.module}.{alias.name}")) is not None and path.is_file()
    ]
    return submodules or [node.module]


def _imports(path: Path) -> tuple[set[str], list[tuple[str, str]]]:
    """(modules imported at module level, [(function, module)] imported inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    in_functions: list[tuple[str, str]] = []
    nested: set[int] = set()
    for function in ast.walk(tree):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(function):
                if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in nested:
                    nested.add(id(node))
                    in_functions += [(function.name, name) for name in _imported(node)]
    at_top = {
        name
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in nested
        for name in _imported(node)
    }
    return at_top, in_functions


def _modules_inside_pip() -> dict[str, tuple[set[str], list[tuple[str, str]]]]:
    """Every guard module that can run inside pip, with its imports (as ``_imports``).

    From what the startup file imports, the import hook, each integration and the late modules,
    following every import of another guard module (at module level or in a function).
    """
    roots = [PACKAGE, _import_hook.__name__, *_import_hook.INTEGRATIONS.values()]
    pending, found = [*roots, *hook.LATE_MODULES], {}
    while pending:
        name = pending.pop()
        path = _module_path(name)
        if name in found or path is None or name in OUTSIDE_ANY_INSTALLATION:
            continue
        at_top, in_functions = _imports(path)
        found[name] = (at_top, in_functions)
        pending += [*at_top, *(module for _function, module in in_functions)]
    return found


def test_every_import_the_guard_does_inside_pip_happens_before_pips_barrier() -> None:
    modules = _modules_inside_pip()
    assert {"pip_cache_guard.hook", "pip_cache_guard.history", "pip_cache_guard.switches"} <= set(
        modules
    )
    late = [
        f"{module}.{function}() imports {imported}"
        for module, (_at_top, in_functions) in sorted(modules.items())
        for function, imported in in_functions
        if imported not in (*hook.LATE_MODULES, *BEFORE_ANY_BARRIER, *OUTSIDE_ANY_INSTALLATION)
    ]
    assert late == [], (
        "imports that pip 26.1+ warns about or blocks once an installation started: import these "
        "at module level, or add them to hook.LATE_MODULES"
    )


def test_the_late_modules_and_the_exceptions_exist() -> None:
    for name in (*hook.LATE_MODULES, *BEFORE_ANY_BARRIER, *OUTSIDE_ANY_INSTALLATION):
        assert importlib.util.find_spec(name) is not None, name


@pytest.mark.skipif(sys.version_info < (3, 10), reason="sys.stdlib_module_names is 3.10+")
def test_every_third_party_module_the_guard_imports_inside_pip_can_be_reached() -> None:
    """``_import_hook.reach_dependencies`` finds them where pip's build isolation hid them."""
    imported = {
        name.partition(".")[0]
        for at_top, in_functions in _modules_inside_pip().values()
        for name in (*at_top, *(module for _function, module in in_functions))
    }
    stdlib = set(sys.stdlib_module_names)
    assert imported - stdlib - {PACKAGE} == set(_import_hook.DEPENDENCIES)


def test_the_session_import_loads_only_the_patching_layer() -> None:
    """``import pip._internal.network.session`` (what every networked pip command does) patches pip
    and loads nothing of the guard beyond that: not the decisions (``hook``, with ``diagnose``,
    ``ledger``, ``spool``), which the first wrapper pip calls imports, nor any late module."""
    probe = (
        "import sys, pip_cache_guard, pip._internal.network.session; "  # the hook, as the .pth does
        "print(' '.join(name for name in sys.modules if name.startswith('pip_cache_guard')))"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PIP_CACHE_GUARD")}
    loaded = subprocess.run(
        [sys.executable, "-c", probe], env=environ, check=True, capture_output=True, text=True
    ).stdout.split()
    assert "pip_cache_guard.integrations.controller" in loaded  # the guard patched pip
    patching_layer = {
        PACKAGE,
        f"{PACKAGE}.switches",
        f"{PACKAGE}._import_hook",
        f"{PACKAGE}.integrations",
        *_import_hook.INTEGRATIONS.values(),
    }
    assert set(loaded) - patching_layer == set()
    assert set(loaded) & {f"{PACKAGE}.integrations.download", *hook.LATE_MODULES} == set()
    only_when_wrong = {f"{PACKAGE}.entries", f"{PACKAGE}.report", f"{PACKAGE}.history"}
    assert {f"{PACKAGE}.hook", *only_when_wrong} <= set(hook.LATE_MODULES)  # before the barrier
