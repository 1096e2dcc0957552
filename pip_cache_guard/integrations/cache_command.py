"""Integration with pip's ``cache`` command: ``pip cache verify [--fix] [--json] [--digests]``.

Users look for cache commands under ``pip cache``. Every pip since 20.1 (checked: 21.3 - 26.3) has
``CacheCommand`` in ``pip._internal.commands.cache`` with a ``usage`` string, ``add_options(self)``
(options go to ``self.cmd_opts``) and ``run(self, options, args)``; pip builds the command's
parser (usage and ``--help`` text from ``usage`` and the class docstring) when it instantiates the
class, after this module patched it. ``verify`` is one line in both texts, three options, and
``run`` answering ``verify`` itself with ``pip-cache-guard verify``'s engine and exit codes, on the
cache pip itself would use (its ``--cache-dir``, config and environment). Every other subcommand
goes to pip's own ``run`` untouched; given ``--fix``, ``--json`` or ``--digests`` they fail exactly
as pip fails on an unknown option. ``verify`` with the cache disabled (``--no-cache-dir``) goes
there too, whatever its options, and pip says why it cannot run. Another shape of
``CacheCommand`` is left alone.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any, Callable

from pip_cache_guard.integrations import has_parameters, wrap_once
from pip_cache_guard.switches import report_internal_error

SUBCOMMAND = "verify"
USAGE_LINE = "%prog verify [--fix] [--json] [--digests]"
HELP_LINE = (
    "- verify: Check every entry of the cache for damage (pip-cache-guard); "
    "--fix deletes exactly the damaged files."
)
# Where the options land in pip's ``options``; named so that they cannot meet pip's own.
FIX_DEST = "pip_cache_guard_fix"
JSON_DEST = "pip_cache_guard_json"
DIGESTS_DEST = "pip_cache_guard_digests"
OPTIONS = (  # verify's: flag, where it lands, help
    ("--fix", FIX_DEST, "verify: delete exactly the damaged files"),
    ("--json", JSON_DEST, "verify: print a JSON document on stdout"),
    ("--digests", DIGESTS_DEST, "verify: also hash every cached body against its digest"),
)
USAGE_ERROR = 2  # pip's exit code for an unknown option, and the guard's for an error


def apply(module: ModuleType) -> str:
    """Add ``verify`` to one ``pip._internal.commands.cache`` module, if it has the known shape."""
    command = getattr(module, "CacheCommand", None)
    if (
        command is None
        or not isinstance(getattr(command, "usage", None), str)
        or not has_parameters(command, "run", ["self", "options", "args"], exact=True)
        or not has_parameters(command, "add_options", ["self"], exact=True)
    ):
        return "unsupported: unknown CacheCommand"
    if wrap_once(command, "run", _run):
        wrap_once(command, "add_options", _add_options)
        command.usage = f"{command.usage.rstrip()}\n        {USAGE_LINE}\n    "
        command.__doc__ = _with_help_line(command.__doc__ or "")
    return "CacheCommand.run (pip cache verify)"


def _with_help_line(doc: str) -> str:
    """The class docstring with ``HELP_LINE`` after pip's last ``- name: ...`` subcommand line."""
    lines = doc.splitlines()
    listed = [n for n, line in enumerate(lines) if line.lstrip().startswith("- purge:")]
    if not listed:
        return doc
    indent = lines[listed[-1]][: len(lines[listed[-1]]) - len(lines[listed[-1]].lstrip())]
    lines.insert(listed[-1] + 1, indent + HELP_LINE)
    return "\n".join(lines) + ("\n" if doc.endswith("\n") else "")


def _add_options(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    result = wrapped(*args, **kwargs)
    try:
        for flag, dest, text in OPTIONS:
            instance.cmd_opts.add_option(
                flag, action="store_true", dest=dest, default=False, help=text
            )
    except Exception:  # pip gained options of these names: pip cache stays as pip made it
        report_internal_error("adding pip cache verify's options")
    return result


def _run(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    if len(args) != 2 or kwargs:  # pip calls run(options, args); anything else is not ours
        return wrapped(*args, **kwargs)
    options, arguments = args
    if not arguments or arguments[0] != SUBCOMMAND:
        for flag, dest, _ in OPTIONS:
            if getattr(options, dest, False):  # what pip's parser says and does without us
                instance.parser.print_usage(sys.stderr)
                sys.stderr.write(f"no such option: {flag}\n")
                return USAGE_ERROR
        return wrapped(*args, **kwargs)
    if not getattr(options, "cache_dir", None):  # --no-cache-dir: pip says the cache is disabled
        return wrapped(*args, **kwargs)
    if len(arguments) > 1:
        sys.stderr.write("ERROR: Too many arguments\n")
        return USAGE_ERROR
    try:
        # The guard's command line, imported only now: pip's cache command installs nothing, so
        # no import barrier (pip 26.1+) is up here, and no build environment ever runs it.
        from pip_cache_guard import cli

        return cli.run_verify(
            options.cache_dir,
            fix=bool(getattr(options, FIX_DEST, False)),
            as_json=bool(getattr(options, JSON_DEST, False)),
            command=[*cli.this_pip(), "cache", SUBCOMMAND],
            digests=bool(getattr(options, DIGESTS_DEST, False)),
        )
    except Exception as exc:  # the guard's own failure: an error exit, never a traceback in pip
        report_internal_error("pip cache verify")
        sys.stderr.write(f"pip-cache-guard: error: {type(exc).__name__}: {exc}\n")
        return USAGE_ERROR
