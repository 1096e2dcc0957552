"""The body integrations' feature detection and their one judgement of pip's errors, as units.

Every real pip is driven end to end in ``test_bodies_e2e.py``; these stand-in modules only show
that an unknown shape is left alone (and said so) and which errors mean "cannot be read".
"""

from __future__ import annotations

import gzip
import tarfile
import types
import zipfile
import zlib
from collections.abc import Iterator
from types import ModuleType

import pytest

from pip_cache_guard.integrations import download, hashes, req_install, wheel_metadata


@pytest.fixture
def module() -> Iterator[ModuleType]:
    yield types.ModuleType("stand_in.pip._internal.somewhere")


@pytest.mark.parametrize("integration", [download, hashes, wheel_metadata, req_install])
def test_a_module_without_the_known_shape_is_left_alone_and_said_so(
    integration: ModuleType, module: ModuleType
) -> None:
    class Unrelated:
        def run(self) -> None:
            return None

    module.Downloader = module.Hashes = module.WheelDistribution = Unrelated  # type: ignore[attr-defined]
    before = dict(vars(Unrelated))

    assert integration.apply(module).startswith("unsupported")
    assert dict(vars(Unrelated)) == before


class InstallationError(Exception):
    """pip's kind of error: raised while handling the real one, which stays its context."""


def _raised_while_handling(cause: BaseException) -> BaseException:
    try:
        try:
            raise cause
        except type(cause):
            raise InstallationError("x has an invalid wheel")  # noqa: B904 (as pip does)
    except InstallationError as exc:
        return exc


@pytest.mark.parametrize(
    "cause",
    [
        zipfile.BadZipFile("Bad CRC-32 for file 'x/payload.bin'"),
        zlib.error("Error -3 while decompressing data"),
        EOFError("Compressed file ended before the end-of-stream marker was reached"),
        gzip.BadGzipFile("CRC check failed"),
        tarfile.ReadError("invalid header"),
    ],
)
def test_archive_errors_are_unreadable_also_behind_pips_own(cause: BaseException) -> None:
    assert download._unreadable(cause) is not None
    wrapped = _raised_while_handling(cause)
    assert wrapped.__context__ is cause
    assert download._unreadable(wrapped) is not None


def test_other_errors_are_not_unreadable() -> None:
    assert download._unreadable(ValueError("no matching distribution")) is None
    assert download._unreadable(OSError("No space left on device")) is None
    assert download._unreadable(_raised_while_handling(KeyError("x"))) is None
