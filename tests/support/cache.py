"""pip's HTTP cache on disk, seen from outside: where an entry lives, and how to damage it.

Layout (CacheControl's FileCache as vendored by pip): key = the request URL normalised and without
fragment; ``h = sha224(key).hexdigest()``; metadata at ``<cache>/http-v2/h[0]/.../h[4]/h`` and the
body beside it as ``h + ".body"`` (pip >= 23.3). pip <= 23.2 used ``<cache>/http/`` with the body
inside the metadata. Metadata is ``b"cc=4,"`` + msgpack of ``{"response": {...}, "vary": {...}}``.

The damage functions each reproduce one row of the table in the internals notes, in place (the
file keeps its inode and mode), so a test can say which kind of damage it expects to be handled.
"""

from __future__ import annotations

import hashlib
import random
import re
from pathlib import Path
from typing import Any

import msgpack

HTTP_V2 = "http-v2"
HTTP_LEGACY = "http"
PREFIX = b"cc=4,"
_HEX56 = re.compile(r"[0-9a-f]{56}")
# CacheControl's own URI regex (RFC 3986, appendix B).
_URI = re.compile(r"^(([^:/?#]+):)?(//([^/?#]*))?([^?#]*)(\?([^#]*))?(#(.*))?")


# -- locating entries ------------------------------------------------------------------------


def cache_key(url: str) -> str:
    """The key pip's CacheControl stores ``url`` under.

    Scheme and authority lower-cased, empty path becomes ``/``, fragment dropped. Credentials are
    dropped too: pip's auth handler strips them from the URL before the cache sees the request.
    """
    match = _URI.match(url)
    assert match is not None
    scheme, authority, path, query = match.group(2), match.group(4), match.group(5), match.group(7)
    if not scheme or not authority:
        raise ValueError(f"not an absolute URL: {url!r}")
    authority = authority.rpartition("@")[2]
    request_uri = (path or "/") + (f"?{query}" if query else "")
    return f"{scheme.lower()}://{authority.lower()}{request_uri}"


def is_legacy(pip_version: str) -> bool:
    """Whether this pip keeps its HTTP cache in ``http/``, bodies inside the metadata files
    (pip <= 23.2), rather than in ``http-v2/`` with ``.body`` files."""
    return tuple(int(part) for part in pip_version.split(".")[:2]) < (23, 3)


def cache_root(cache_dir: Path, *, legacy: bool = False) -> Path:
    """``<cache>/http-v2`` (pip >= 23.3) or ``<cache>/http`` (pip <= 23.2)."""
    return cache_dir / (HTTP_LEGACY if legacy else HTTP_V2)


def entry_path(cache_dir: Path, url: str, *, legacy: bool = False) -> Path:
    """Where pip keeps the metadata file for ``url`` (whether or not it exists)."""
    digest = hashlib.sha224(cache_key(url).encode()).hexdigest()
    return cache_root(cache_dir, legacy=legacy).joinpath(*digest[:5], digest)


def body_path(entry: Path) -> Path:
    """The separate body file of an ``http-v2`` entry."""
    return entry.with_name(entry.name + ".body")


def list_entries(cache_dir: Path, *, legacy: bool = False) -> list[Path]:
    """All metadata files (not ``.body``, ``.tmp`` or ``.lock``), sorted."""
    root = cache_root(cache_dir, legacy=legacy)
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and _HEX56.fullmatch(p.name))


def snapshot(root: Path) -> dict[Path, bytes]:
    """``{path: bytes}`` of every file under ``root``: compare two to prove nothing else moved."""
    if not root.is_dir():
        return {}
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def read_entry(entry: Path) -> dict[str, Any]:
    """Decode a ``cc=4`` metadata file the way pip's serializer does."""
    data = entry.read_bytes()
    if not data.startswith(PREFIX):
        raise ValueError(f"{entry} does not start with {PREFIX!r}")
    decoded = msgpack.loads(data[len(PREFIX) :], raw=False)
    if not isinstance(decoded, dict):
        raise ValueError(f"{entry} holds a {type(decoded).__name__}, not a dict")
    return decoded


def write_entry(entry: Path, data: Any) -> None:
    """Encode ``data`` as pip would (``cc=4,`` + msgpack with bin type) and overwrite ``entry``."""
    entry.write_bytes(PREFIX + msgpack.dumps(data, use_bin_type=True))


# -- damage ------------------------------------------------------------------------------------


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"no cache file to damage at {path}")
    return path


def truncate(path: Path, n: int) -> None:
    """Cut ``path`` to its first ``n`` bytes; a negative ``n`` drops the last ``-n`` bytes."""
    size = _existing(path).stat().st_size
    keep = n if n >= 0 else size + n
    if not 0 <= keep < size:
        raise ValueError(f"cannot truncate {size} bytes to {keep}")
    with path.open("r+b") as handle:
        handle.truncate(keep)


def truncate_body(entry: Path, n: int) -> None:
    """``truncate`` applied to the entry's ``.body`` file (the entry's metadata stays valid)."""
    truncate(body_path(entry), n)


def garbage(path: Path, size: int = 256, seed: int = 0) -> None:
    """Replace the content with random bytes that have no ``cc=N,`` prefix."""
    data = random.Random(seed).randbytes(size)
    if data.startswith(b"cc="):
        data = b"\xff" + data[1:]
    _existing(path).write_bytes(data)


def zero_length(path: Path) -> None:
    """Empty the file, as a crash between create and write can leave it."""
    _existing(path).write_bytes(b"")


def old_format(path: Path, version: int = 2) -> None:
    """Re-label the entry as another serializer version: ``cc=<version>,`` + the same payload."""
    data = _existing(path).read_bytes()
    payload = data.split(b",", 1)[1] if data.startswith(b"cc=") else data
    path.write_bytes(f"cc={version},".encode() + payload)


def wrong_shape(path: Path, shape: str = "list") -> None:
    """Valid ``cc=4`` msgpack of the wrong shape, which makes pip's serializer raise.

    ``shape="list"``: a list; ``"no-response"``: a dict without ``response``.
    """
    bodies: dict[str, Any] = {
        "list": ["not", "a", "dict"],
        "no-response": {"vary": {}},
    }
    if shape not in bodies:
        raise ValueError(f"unknown shape {shape!r}, expected one of {sorted(bodies)}")
    _existing(path)
    write_entry(path, bodies[shape])


def wrong_type(path: Path, field: str = "status") -> None:
    """A valid entry whose response ``field`` is stored as text (``200`` -> ``"200"``): the
    effect of one flipped msgpack type byte. pip's loader accepts it, then pip crashes on it."""
    data = read_entry(_existing(path))
    data["response"][field] = str(data["response"][field])
    write_entry(path, data)


def vary_mismatch(
    path: Path, header: str = "Accept-Encoding", value: str = "something-else"
) -> None:
    """Keep a valid entry but record ``vary = {header: value}``, which no pip request matches."""
    data = read_entry(_existing(path))
    data["vary"] = {header: value}
    write_entry(path, data)


def stored_body(entry: Path, *, legacy: bool = False) -> bytes:
    """The body pip keeps for an entry: the ``.body`` file, or inside the metadata (pip <= 23.2)."""
    if legacy:
        body: bytes = read_entry(entry)["response"]["body"]
        return body
    return body_path(entry).read_bytes()


def flip_body_byte(entry: Path, *, legacy: bool = False, at: float = 0.5) -> None:
    """Bit rot: invert one byte of the stored body (at this fraction of it), size unchanged.

    On pip <= 23.2 the body sits inside the metadata file, as msgpack bin data: the byte is
    flipped there, so that the metadata still loads and only the body is wrong.
    """
    path, data, start, body = _stored_span(entry, legacy)
    data[start + int(len(body) * at)] ^= 0xFF
    path.write_bytes(bytes(data))


def rot_in_body(entry: Path, old: bytes, new: bytes, *, legacy: bool = False) -> None:
    """Bit rot that still parses: the first ``old`` in the stored body becomes ``new`` (as long),
    where it is stored (see ``flip_body_byte``)."""
    assert len(old) == len(new), (old, new)
    path, data, start, body = _stored_span(entry, legacy)
    at = body.find(old)
    assert at >= 0, f"{old!r} not in the body of {entry}"
    data[start + at : start + at + len(new)] = new
    path.write_bytes(bytes(data))


def _stored_span(entry: Path, legacy: bool) -> tuple[Path, bytearray, int, bytes]:
    """The file holding an entry's body, its bytes, where the body starts in them, the body."""
    body = stored_body(entry, legacy=legacy)
    path = entry if legacy else body_path(entry)
    data = bytearray(path.read_bytes())
    start = data.find(body) if legacy else 0
    assert start >= 0, f"body not found in {path}"
    return path, data, start, body
