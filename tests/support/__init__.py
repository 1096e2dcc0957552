"""The end-to-end harness: loopback index, test wheels, venvs with real pip, pip's cache on disk.

One concern a module: ``index`` (the HTTP server), ``wheels`` (packages it serves), ``venvs``
(interpreters, pip versions, the guard wheel), ``runner`` (hermetic pip runs), ``cache`` (entry
paths, snapshots, damage). Fixtures that wire them together live in ``tests/conftest.py``.
"""
