"""pip-cache-guard: catches damaged entries in pip's HTTP cache as pip reads them.

This file must stay empty of imports: the startup hook imports ``pip_cache_guard._boot`` in every
Python process of the environment, and that first imports this package.
"""

__version__ = "0.1.0"
