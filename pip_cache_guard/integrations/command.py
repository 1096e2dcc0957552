"""Integration with pip's command runner: the exit summary follows the verbosity pip computed.

``Command._main`` (``pip/_internal/cli/base_command.py``, pip 21.3 - 26.3) sets
``verbosity = options.verbose - options.quiet`` (2 under ``--debug``) and passes it on as
``setup_logging(verbosity=...)``, a global of that module looked up at each call. pip's option
parser has already folded in everything that counts: ``-qqU``, ``-Uqq``, ``--quiet --quiet``,
abbreviations (``--qui``), ``PIP_QUIET``/``PIP_VERBOSE`` and config files. Re-parsing the command
line would get some of them wrong, so the guard takes pip's number. A module without a
``setup_logging(verbosity, ...)`` is left alone, and the summary is then printed in full.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Callable

from pip_cache_guard._import_hook import PIP_RUN
from pip_cache_guard.integrations import has_parameters, wrap_once
from pip_cache_guard.switches import report_internal_error

SETUP_LOGGING = "setup_logging"


def apply(module: ModuleType) -> str:
    """Wrap ``setup_logging`` of one ``pip._internal.cli.base_command`` module, if it is known."""
    if not has_parameters(module, SETUP_LOGGING, ["verbosity"]):
        return "unsupported: no setup_logging(verbosity, ...)"
    wrap_once(module, SETUP_LOGGING, _note_verbosity)
    return SETUP_LOGGING


def _note_verbosity(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    """Remember the verbosity pip computed for this run (the summary follows it)."""
    try:
        PIP_RUN.verbosity = int(args[0] if args else kwargs.get("verbosity"))
    except Exception:  # not a number we can use: the summary is printed in full
        report_internal_error("noting pip's verbosity")
    return wrapped(*args, **kwargs)
