"""``python -m pip_cache_guard``: the same as the ``pip-cache-guard`` command."""

import sys

from pip_cache_guard.cli import main

sys.exit(main())
