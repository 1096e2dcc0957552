"""What a cached body must hash to, and who says so: one answer for the hook and for ``verify``.

pip checks a file against a digest only when its link carries one (``#sha256=``); behind an index
that publishes none, a byte rotted in a cached body reaches the user. An entry can still say what
its body hashed to, in two ways, used in this order:

- the guard's own record (``RECORD_KEY``), written into the entry's metadata document when a
  guarded pip stored the body: ``{"sha256": <hex>, "size": <bytes>}`` under a top-level key. Every
  CacheControl since 0.12 (pip 21.3 - 26.3, standalone 0.13 - 0.15, so Poetry and pipenv too)
  reads only the document's "response" and "vary", so it reads such an entry exactly as before.
  A pip without the guard that stores the entry again writes a document without it: the entry is
  then unverifiable, never wrong.
- a digest the server sent with the response, kept by CacheControl among the stored headers
  (``server_digest``): RFC 9530's ``Repr-Digest`` and ``Content-Digest``, RFC 3230's ``Digest``,
  Artifactory's ``X-Checksum-*``, Google Cloud Storage's ``x-goog-hash`` and
  ``x-goog-meta-checksum-*``, ``Content-MD5``, and Nexus 2's SHA-1 ``ETag``. CacheControl stores
  the body as it came over the wire, so a digest of the decoded content says nothing about it:
  a response with a ``Content-Encoding`` is judged by the guard's own record only.

A plain ``ETag`` is never taken for a digest (S3's is an MD5 only for some uploads, nginx's is a
date and a size): a mismatch must prove damage.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from typing import Any, Callable

RECORD_KEY = "pip-cache-guard"
RECORD_SOURCE = "the sha256 pip-cache-guard recorded when the entry was stored"

# Hex digits of each algorithm a server may name, strongest first (the first found is used).
_HEX_LENGTHS = {"sha512": 128, "sha256": 64, "sha1": 40, "md5": 32}
# RFC 9530 and RFC 3230 algorithm names (case-insensitive) to hashlib's.
_ALGORITHM_NAMES = {"sha-512": "sha512", "sha-256": "sha256", "sha": "sha1", "md5": "md5"}
_CHECKSUM_HEADERS = {  # hex digests, one per header
    f"{prefix}{name}": name
    for prefix in ("x-checksum-", "x-goog-meta-checksum-")
    for name in ("sha512", "sha256", "sha1", "md5")
}


class Expected:
    """The digest a body must have: hashlib's algorithm, lower-case hex, and who said so."""

    __slots__ = ("algorithm", "hexdigest", "source")

    def __init__(self, algorithm: str, hexdigest: str, source: str) -> None:
        self.algorithm, self.hexdigest, self.source = algorithm, hexdigest, source

    def matches(self, hexdigest: str) -> bool:
        return hexdigest.lower() == self.hexdigest

    @property
    def is_record(self) -> bool:
        """The guard's own record: what the stored body hashed to, no word of the index's."""
        return self.source == RECORD_SOURCE

    def __repr__(self) -> str:
        return f"Expected({self.algorithm}:{self.hexdigest[:12]}…, {self.source!r})"


def hasher(algorithm: str, data: bytes = b"") -> Any:
    """hashlib's ``algorithm``: a digest to compare bytes with, not a secret (so an MD5 a server
    sent can be checked under FIPS too)."""
    return hashlib.new(algorithm, data, usedforsecurity=False)


def record_of(body: bytes | bytearray | memoryview) -> dict[str, Any]:
    """The guard's record of a body it sees stored."""
    return {"sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}


def with_record(blob: bytes, record: Mapping[str, Any], pack: Callable[[Any], bytes]) -> bytes:
    """``blob`` (``cc=4,`` and a msgpack map of "response" and "vary", as every CacheControl
    since 0.12 writes it) with ``record`` added under ``RECORD_KEY``: one more pair at the end of
    the map, so the body inside (pip up to 23.2) is copied, never decoded. Anything else is
    returned unchanged."""
    prefix = b"cc=4,\x82"  # a msgpack fixmap of two pairs
    if not blob.startswith(prefix):
        return blob
    rest = memoryview(blob)[len(prefix) :]  # one copy of the body inside, not two
    return b"".join((b"cc=4,\x83", rest, pack(RECORD_KEY), pack(dict(record))))


def recorded(document: Any) -> dict[str, Any] | None:
    """The guard's record in a decoded document, if it has a well-formed one."""
    record = document.get(RECORD_KEY) if isinstance(document, dict) else None
    if not isinstance(record, dict):
        return None
    digest, size = record.get("sha256"), record.get("size")
    if not isinstance(digest, str) or not _is_hex(digest, "sha256") or not isinstance(size, int):
        return None
    return record


def expected_digest(document: Any) -> Expected | None:
    """What the body of the entry decoded as ``document`` must hash to, or None if nothing says."""
    record = recorded(document)
    if record is not None:
        return Expected("sha256", record["sha256"].lower(), RECORD_SOURCE)
    response = document.get("response") if isinstance(document, dict) else None
    if not isinstance(response, dict) or response.get("status") != 200:
        return None
    headers = response.get("headers")
    return server_digest(headers) if isinstance(headers, dict) else None


def server_digest(headers: Mapping[str, Any]) -> Expected | None:
    """The strongest digest of the body as stored found in a response's headers, if any."""
    lowered = {
        str(name).lower(): value for name, value in headers.items() if isinstance(value, str)
    }
    if lowered.get("content-encoding", "identity").strip().lower() != "identity":
        return None
    found = [
        *_structured("repr-digest", lowered),
        *_structured("content-digest", lowered),
        *_rfc3230(lowered),
        *(
            Expected(algorithm, value.strip().lower(), f"the server's {_title(name)} header")
            for name, algorithm in _CHECKSUM_HEADERS.items()
            if (value := lowered.get(name)) is not None and _is_hex(value.strip(), algorithm)
        ),
        *_base64_list("x-goog-hash", lowered),
        *_base64_list("content-md5", lowered, default="md5"),
        *_nexus_etag(lowered),
    ]
    for algorithm in _HEX_LENGTHS:  # strongest first
        for expected in found:
            if expected.algorithm == algorithm:
                return expected
    return None


def _structured(header: str, headers: Mapping[str, str]) -> list[Expected]:
    """RFC 9530: ``sha-256=:<base64>:, sha-512=:<base64>:`` (a structured-field dictionary)."""
    found = []
    for member in headers.get(header, "").split(","):
        name, _, value = member.partition(";")[0].strip().partition("=")
        algorithm = _ALGORITHM_NAMES.get(name.strip().lower())
        value = value.strip()
        if algorithm in ("sha256", "sha512") and len(value) > 2 and value[0] == value[-1] == ":":
            hexdigest = _base64_hex(value[1:-1], algorithm)
            if hexdigest is not None:
                found.append(
                    Expected(algorithm, hexdigest, f"the server's {_title(header)} header")
                )
    return found


def _rfc3230(headers: Mapping[str, str]) -> list[Expected]:
    """RFC 3230: ``Digest: SHA-256=<base64>,MD5=<base64>``."""
    found = []
    for member in headers.get("digest", "").split(","):
        name, _, value = member.strip().partition("=")
        algorithm = _ALGORITHM_NAMES.get(name.strip().lower())
        hexdigest = _base64_hex(value.strip(), algorithm) if algorithm else None
        if algorithm and hexdigest is not None:
            found.append(Expected(algorithm, hexdigest, "the server's Digest header"))
    return found


def _base64_list(header: str, headers: Mapping[str, str], default: str = "") -> list[Expected]:
    """``x-goog-hash: crc32c=<base64>,md5=<base64>`` (the MD5 of a non-composite object), or a
    single ``Content-MD5: <base64>``."""
    found = []
    raw = headers.get(header)
    for member in raw.split(",") if raw is not None else ():
        name, _, value = member.strip().partition("=") if not default else (default, "", member)
        algorithm = name.strip().lower()
        hexdigest = _base64_hex(value.strip(), algorithm) if algorithm in _HEX_LENGTHS else None
        if hexdigest is not None:
            found.append(Expected(algorithm, hexdigest, f"the server's {_title(header)} header"))
    return found


def _nexus_etag(headers: Mapping[str, str]) -> list[Expected]:
    """Nexus 2's ``ETag: "{SHA1{<hex>}}"``: the only ETag that says it is a digest."""
    etag = headers.get("etag", "").strip().removeprefix("W/").strip('"')
    if etag.startswith("{SHA1{") and etag.endswith("}}") and _is_hex(etag[6:-2], "sha1"):
        return [Expected("sha1", etag[6:-2].lower(), "the server's SHA-1 ETag (Nexus)")]
    return []


def _base64_hex(value: str, algorithm: str | None) -> str | None:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    hexdigest = raw.hex()
    return hexdigest if algorithm is not None and _is_hex(hexdigest, algorithm) else None


def _is_hex(value: str, algorithm: str) -> bool:
    return len(value) == _HEX_LENGTHS[algorithm] and all(
        c in "0123456789abcdefABCDEF" for c in value
    )


def _title(header: str) -> str:
    """How a header is usually spelled (``X-Checksum-Sha256``), for the report."""
    return "-".join(
        part.upper() if part in ("md5", "x") else part.capitalize() for part in header.split("-")
    )
