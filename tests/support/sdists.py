"""An sdist whose build needs a dependency from the index: pip installs it with a child pip.

``guardtest-backend`` is a wheel holding a tiny PEP 517 backend (only ``build_wheel``: every pip
falls back to it for metadata); ``guardtest-built`` is an sdist whose ``pyproject.toml`` requires
that backend. Installing the sdist makes pip create an isolated build environment and install the
backend there with a second pip in a subprocess, reading the same HTTP cache.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

from .wheels import _ZIP_DATE, _record_hash

BACKEND = "guardtest-backend"
SDIST = "guardtest-built"
VERSION = "1.0"

# The backend: builds a wheel of the project in the current directory (name and version from
# PKG-INFO), holding one module. Stdlib only, Python 3.7+.
_BACKEND_SOURCE = '''\
"""A PEP 517 backend of the pip-cache-guard test harness."""
import base64, hashlib, os, zipfile


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    fields = dict(
        line.split(": ", 1) for line in open("PKG-INFO").read().splitlines() if ": " in line
    )
    name, version = fields["Name"], fields["Version"]
    module = name.replace("-", "_")
    dist_info = module + "-" + version + ".dist-info"
    files = [
        (module + "/__init__.py", b"BUILT = True\\n"),
        (dist_info + "/METADATA", ("Metadata-Version: 2.1\\nName: %s\\nVersion: %s\\n"
                                   % (name, version)).encode()),
        (dist_info + "/WHEEL", b"Wheel-Version: 1.0\\nGenerator: guardtest-backend\\n"
                               b"Root-Is-Purelib: true\\nTag: py3-none-any\\n"),
    ]
    record = []
    for path, data in files:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
        record.append("%s,sha256=%s,%d" % (path, digest.decode(), len(data)))
    record.append(dist_info + "/RECORD,,")
    files.append((dist_info + "/RECORD", ("\\n".join(record) + "\\n").encode()))
    filename = module + "-" + version + "-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w") as archive:
        for path, data in files:
            archive.writestr(path, data)
    return filename
'''


def build_backend_wheel(dest: Path) -> Path:
    """``guardtest_backend-1.0-py3-none-any.whl`` in ``dest``."""
    module = BACKEND.replace("-", "_")
    dist_info = f"{module}-{VERSION}.dist-info"
    files = [
        (f"{module}/__init__.py", _BACKEND_SOURCE.encode()),
        (f"{dist_info}/METADATA", f"Metadata-Version: 2.1\nName: {BACKEND}\nVersion: {VERSION}\n"),
        (
            f"{dist_info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: pip-cache-guard-tests\nRoot-Is-Purelib: true\n"
            "Tag: py3-none-any\n",
        ),
    ]
    encoded = [(name, data if isinstance(data, bytes) else data.encode()) for name, data in files]
    record = [f"{name},{_record_hash(data)},{len(data)}" for name, data in encoded]
    record.append(f"{dist_info}/RECORD,,")
    encoded.append((f"{dist_info}/RECORD", ("\n".join(record) + "\n").encode()))
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{module}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in encoded:
            archive.writestr(zipfile.ZipInfo(name, date_time=_ZIP_DATE), data)
    return path


def build_sdist(dest: Path) -> Path:
    """``guardtest_built-1.0.tar.gz`` in ``dest``: PKG-INFO and a pyproject.toml, nothing else."""
    root = f"{SDIST.replace('-', '_')}-{VERSION}"
    files = {
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {SDIST}\nVersion: {VERSION}\n",
        "pyproject.toml": (
            "[build-system]\n"
            f'requires = ["{BACKEND}"]\n'
            f'build-backend = "{BACKEND.replace("-", "_")}"\n'
        ),
    }
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{root}.tar.gz"
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{root}/{name}")
            info.size, info.mtime, info.mode = len(data), 1_580_601_600, 0o644
            archive.addfile(info, io.BytesIO(data))
    return path
