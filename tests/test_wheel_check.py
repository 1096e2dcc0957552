"""The one judgement of a cached built wheel, shared by the hook and ``verify``.

It must accept every real wheel and reject what makes pip fail on a built wheel: a file that is
not a zip, a truncated one, a member whose local header disagrees with the central directory
(pip's install dies on it), and a zip that is not a wheel. It never decompresses the payload.
"""

from __future__ import annotations

import types
import zipfile
from pathlib import Path

from pip_cache_guard.diagnose import wheel_problem
from pip_cache_guard.integrations import wheel_cache

from support.wheels import build_wheel

INFO = "guardtest_alpha-1.0.dist-info"


def _good(tmp_path: Path) -> Path:
    return build_wheel(tmp_path, "guardtest-alpha", payload_size=5000).path


def test_a_real_wheel_is_readable(tmp_path: Path) -> None:
    assert wheel_problem(str(_good(tmp_path))) is None


def test_not_a_zip_and_truncated_are_rejected(tmp_path: Path) -> None:
    wheel = _good(tmp_path)
    cut = tmp_path / "cut.whl"
    cut.write_bytes(wheel.read_bytes()[: wheel.stat().st_size // 2])
    garbage = tmp_path / "garbage.whl"
    garbage.write_bytes(b"not a zip" * 50)

    for path in (cut, garbage):
        assert "not a readable zip file" in (wheel_problem(str(path)) or ""), path


def test_a_local_header_that_disagrees_with_the_directory_is_rejected(tmp_path: Path) -> None:
    wheel = _good(tmp_path)
    data = bytearray(wheel.read_bytes())
    first_local_name = data.index(b"guardtest_alpha/__init__.py")  # the local header comes first
    data[first_local_name] = ord("G")
    wheel.write_bytes(bytes(data))

    problem = wheel_problem(str(wheel))

    assert problem is not None and "File name in directory" in problem


def test_a_zip_that_is_not_a_wheel_is_rejected(tmp_path: Path) -> None:
    no_record = tmp_path / "no-record.whl"
    with zipfile.ZipFile(no_record, "w") as archive:
        archive.writestr(f"{INFO}/METADATA", "Name: x\n")
        archive.writestr(f"{INFO}/WHEEL", "Wheel-Version: 1.0\n")
    two = tmp_path / "two.whl"
    with zipfile.ZipFile(two, "w") as archive:
        archive.writestr("a-1.dist-info/METADATA", "")
        archive.writestr("b-1.dist-info/METADATA", "")

    assert "RECORD" in (wheel_problem(str(no_record)) or "")
    assert "2 .dist-info directories" in (wheel_problem(str(two)) or "")


def test_a_wheel_cache_of_another_shape_is_left_alone() -> None:
    class SimpleWheelCache:
        def get(self, link: object, package_name: object) -> object:  # no supported_tags
            return link

    class EphemWheelCache(SimpleWheelCache):
        pass

    module = types.ModuleType("unknown_pip._internal.cache")
    module.SimpleWheelCache = SimpleWheelCache  # type: ignore[attr-defined]
    module.EphemWheelCache = EphemWheelCache  # type: ignore[attr-defined]
    original = SimpleWheelCache.get

    assert wheel_cache.apply(module).startswith("unsupported")
    assert SimpleWheelCache.get is original
