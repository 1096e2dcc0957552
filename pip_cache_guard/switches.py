"""The guard's two switches, at the bottom of the import graph: every other module may use them.

``PIP_CACHE_GUARD=0`` (or ``off``, ``false``, ``no``) turns the guard off entirely;
``PIP_CACHE_GUARD_DEBUG=1`` makes its own internal errors visible on stderr. The name of the
variable that asks for a JSON report is here too: the exit handler checks it before it imports
anything. Stdlib only, and
cheap: the startup path imports this module only once a watched module is being imported (pip
has imported ``traceback`` by then).
"""

from __future__ import annotations

import os
import sys
import traceback  # not lazily: inside pip 26.1+ an internal error can come after its import barrier
from collections.abc import Mapping

from pip_cache_guard import KILL_SWITCH, OFF_VALUES

DEBUG_SWITCH = "PIP_CACHE_GUARD_DEBUG"
REPORT_VARIABLE = "PIP_CACHE_GUARD_REPORT"


def is_disabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the kill switch is set (``PIP_CACHE_GUARD=0``, ``off``, ``false`` or ``no``)."""
    value = (os.environ if environ is None else environ).get(KILL_SWITCH, "")
    return value.strip().lower() in OFF_VALUES


def debug_enabled() -> bool:
    """Whether internal errors should be shown (``PIP_CACHE_GUARD_DEBUG=1``)."""
    return os.environ.get(DEBUG_SWITCH, "").strip().lower() not in ("", *OFF_VALUES)


def report_internal_error(where: str) -> None:
    """Print the current exception to stderr under the debug switch; stay silent otherwise."""
    if not debug_enabled():
        return
    try:
        sys.stderr.write(f"pip-cache-guard (debug): internal error in {where}:\n")
        traceback.print_exc(file=sys.stderr)
    except Exception:  # stderr closed or broken: nothing more to do
        pass
