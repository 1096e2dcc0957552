"""Small, real, installable pure-Python wheels built on the fly.

Each wheel carries a payload of incompressible (seeded random) bytes so that its body is tens to
hundreds of KB: big enough that a truncated cache body is really short, and that Content-Length
checks mean something. Builds are deterministic (fixed seed and zip timestamps), so the same
arguments always give the same bytes, ETag and sha256.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import random
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .index import canonical_name

# The six projects the session serves: canonical name -> payload size in bytes.
DEFAULT_PACKAGES: dict[str, int] = {
    "guardtest-alpha": 20_000,
    "guardtest-bravo": 50_000,
    "guardtest-charlie": 100_000,
    "guardtest-delta": 200_000,
    "guardtest-echo": 30_000,
    "guardtest-foxtrot": 150_000,
}

_ZIP_DATE = (2020, 2, 2, 0, 0, 0)


@dataclass(frozen=True)
class BuiltWheel:
    """A wheel on disk and the facts tests assert against."""

    project: str  # canonical name, e.g. "guardtest-alpha"
    version: str
    path: Path
    sha256: str
    size: int

    @property
    def filename(self) -> str:
        return self.path.name


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def build_wheel(
    dest: Path,
    project: str,
    version: str = "1.0",
    payload_size: int = 20_000,
    seed: int | None = None,
) -> BuiltWheel:
    """Write ``<module>-<version>-py3-none-any.whl`` into ``dest`` and describe it.

    The package ``<module>`` (``project`` with dashes as underscores) holds ``__init__.py`` and
    ``payload.bin`` (``payload_size`` random bytes); METADATA, WHEEL and RECORD follow the wheel
    spec so any pip can install it.
    """
    project = canonical_name(project)
    module = project.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    rng = random.Random(seed if seed is not None else f"{project}-{version}-{payload_size}")
    payload = rng.randbytes(payload_size)
    files: list[tuple[str, bytes]] = [
        (
            f"{module}/__init__.py",
            (
                f'"""Test package {project}, built by the pip-cache-guard test harness."""\n'
                f"__version__ = {version!r}\n"
                f"PAYLOAD_SIZE = {payload_size}\n"
            ).encode(),
        ),
        (f"{module}/payload.bin", payload),
        (
            f"{dist_info}/METADATA",
            (
                "Metadata-Version: 2.1\n"
                f"Name: {project}\n"
                f"Version: {version}\n"
                "Summary: pip-cache-guard test package\n"
                "Requires-Python: >=3.7\n"
            ).encode(),
        ),
        (
            f"{dist_info}/WHEEL",
            (
                b"Wheel-Version: 1.0\n"
                b"Generator: pip-cache-guard-tests\n"
                b"Root-Is-Purelib: true\n"
                b"Tag: py3-none-any\n"
            ),
        ),
    ]
    record_lines = [f"{name},{_record_hash(data)},{len(data)}" for name, data in files]
    record_lines.append(f"{dist_info}/RECORD,,")
    files.append((f"{dist_info}/RECORD", ("\n".join(record_lines) + "\n").encode()))

    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files:
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    data = path.read_bytes()
    return BuiltWheel(project, version, path, hashlib.sha256(data).hexdigest(), len(data))


def build_default_set(dest: Path) -> dict[str, BuiltWheel]:
    """Build the six ``guardtest-*`` projects of ``DEFAULT_PACKAGES``, keyed by project name."""
    return {
        project: build_wheel(dest, project, payload_size=size)
        for project, size in DEFAULT_PACKAGES.items()
    }


# An in-tree PEP 517 backend: no setuptools, so the only build dependency is the one the sdist
# names, and pip's child process that installs it fetches it from the loopback index. Importing
# that dependency in ``build_wheel`` proves it was installed into the build environment.
_BACKEND = '''\
"""A PEP 517 backend of a few lines, for the pip-cache-guard tests."""

import base64
import hashlib
import os
import zipfile

NAME = {name!r}
MODULE = {module!r}
VERSION = {version!r}
NEEDS = {needs_module!r}


def get_requires_for_build_wheel(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    __import__(NEEDS)
    dist_info = f"{{MODULE}}-{{VERSION}}.dist-info"
    files = [
        (f"{{MODULE}}/__init__.py", b"BUILT_FROM_SDIST = True\\n"),
        (f"{{dist_info}}/METADATA", f"Metadata-Version: 2.1\\nName: {{NAME}}\\n"
         f"Version: {{VERSION}}\\n".encode()),
        (f"{{dist_info}}/WHEEL", b"Wheel-Version: 1.0\\nGenerator: backend\\n"
         b"Root-Is-Purelib: true\\nTag: py3-none-any\\n"),
    ]
    record = []
    for path, data in files:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{{path}},sha256={{digest}},{{len(data)}}")
    record.append(f"{{dist_info}}/RECORD,,")
    files.append((f"{{dist_info}}/RECORD", ("\\n".join(record) + "\\n").encode()))
    filename = f"{{MODULE}}-{{VERSION}}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w") as archive:
        for path, data in files:
            archive.writestr(path, data)
    return filename
'''


def build_sdist(dest: Path, project: str, build_requires: str, version: str = "1.0") -> BuiltWheel:
    """Write ``<module>-<version>.tar.gz``: an sdist whose build needs ``build_requires``.

    Its in-tree backend builds a one-module wheel and imports ``build_requires`` while doing so.
    Deterministic (fixed mtimes, no gzip timestamp), like the wheels.
    """
    project = canonical_name(project)
    module = project.replace("-", "_")
    needs_module = canonical_name(build_requires).replace("-", "_")
    root = f"{module}-{version}"
    files = {
        "pyproject.toml": (
            "[build-system]\n"
            f'requires = ["{build_requires}"]\n'
            'build-backend = "backend"\n'
            'backend-path = ["."]\n'
        ).encode(),
        "backend.py": _BACKEND.format(
            name=project, module=module, version=version, needs_module=needs_module
        ).encode(),
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n".encode(),
    }
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{root}.tar.gz"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{root}/{name}")
            info.size, info.mode, info.mtime = len(data), 0o644, 1580601600
            archive.addfile(info, io.BytesIO(data))
    path.write_bytes(gzip.compress(buffer.getvalue(), mtime=0))
    data = path.read_bytes()
    return BuiltWheel(project, version, path, hashlib.sha256(data).hexdigest(), len(data))


# The in-tree PEP 517 backend of ``build_payload_sdist``'s sdists: building needs nothing but the
# stdlib (no build dependency to download into pip's isolated environment), and takes milliseconds.
_PAYLOAD_BACKEND = '''\
"""In-tree PEP 517 backend of a pip-cache-guard test sdist."""
import base64
import hashlib
import os
import zipfile

MODULE = {module!r}
VERSION = {version!r}
METADATA = {metadata!r}
WHEEL = b"Wheel-Version: 1.0\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"


def _record_hash(data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    if os.environ.get("GUARDTEST_BUILD_FAILS"):  # a build that fails (no compiler, say)
        raise RuntimeError("this build fails, as the test asked")
    here = os.path.dirname(os.path.abspath(__file__))
    dist_info = MODULE + "-" + VERSION + ".dist-info"
    files = []
    for name in ("__init__.py", "payload.bin"):
        with open(os.path.join(here, MODULE, name), "rb") as stream:
            files.append((MODULE + "/" + name, stream.read()))
    files.append((dist_info + "/METADATA", METADATA.encode()))
    files.append((dist_info + "/WHEEL", WHEEL))
    record = ["%s,%s,%d" % (name, _record_hash(data), len(data)) for name, data in files]
    record.append(dist_info + "/RECORD,,")
    files.append((dist_info + "/RECORD", ("\\n".join(record) + "\\n").encode()))
    name = MODULE + "-" + VERSION + "-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as archive:
        for member, data in files:
            info = zipfile.ZipInfo(member, date_time=(2020, 2, 2, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return name
'''


BUILD_FAILS = "GUARDTEST_BUILD_FAILS"


@dataclass(frozen=True)
class BuiltSdist:
    """An sdist on disk that pip builds with its own in-tree backend, and what it installs."""

    project: str
    version: str
    path: Path
    installed: dict[str, bytes]  # path relative to the install dir -> content

    @property
    def filename(self) -> str:
        return self.path.name

    @property
    def wheel_filename(self) -> str:
        """The name of the wheel pip builds from it (and keeps in its cache's ``wheels/``)."""
        return f"{self.project.replace('-', '_')}-{self.version}-py3-none-any.whl"


def build_payload_sdist(
    dest: Path,
    project: str,
    version: str = "1.0",
    payload_size: int = 20_000,
    compresslevel: int = 9,
) -> BuiltSdist:
    """Write ``<module>-<version>.tar.gz`` (PEP 625 name) into ``dest``, deterministically.

    Its wheel holds ``<module>/__init__.py`` and ``<module>/payload.bin`` (random bytes); pip
    builds it with the backend inside the sdist (``backend-path``), with or without isolation.
    The build fails where ``BUILD_FAILS`` is set in the environment. ``compresslevel=0`` stores
    the tar in deflate's stored blocks: a byte flipped in a member's data changes that member and
    nothing a reader checks (tarfile stops at the end-of-archive block, before gzip's CRC).
    """
    project = canonical_name(project)
    module = project.replace("-", "_")
    rng = random.Random(f"sdist-{project}-{version}-{payload_size}")
    installed = {
        f"{module}/__init__.py": f'"""Test package {project}, built from an sdist."""\n'.encode(),
        f"{module}/payload.bin": rng.randbytes(payload_size),
    }
    metadata = f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n"
    root = f"{module}-{version}"
    members = {
        "pyproject.toml": (
            b'[build-system]\nrequires = []\nbuild-backend = "guardtest_backend"\n'
            b'backend-path = ["."]\n'
        ),
        "guardtest_backend.py": _PAYLOAD_BACKEND.format(
            module=module, version=version, metadata=metadata
        ).encode(),
        "PKG-INFO": metadata.encode(),
        **installed,
    }
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{root}.tar.gz"
    with (
        path.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=compresslevel, mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        for name, data in sorted(members.items()):
            info = tarfile.TarInfo(f"{root}/{name}")
            info.size, info.mtime, info.mode = len(data), 1_580_601_600, 0o644
            archive.addfile(info, io.BytesIO(data))
    return BuiltSdist(project, version, path, installed)
