"""The real CacheControl loaders as an oracle for the classifier, and generated damage for them.

``Flavour`` is one CacheControl copy (pip's vendored one or the standalone package) with its
msgpack, requests and urllib3. ``Flavour.outcome`` says what pip would get from some metadata
bytes: ``"none"`` (the loader gives nothing: a miss), ``"raises"`` (the loader raises),
``"chokes"`` (the loader returns a response, but using it as pip does raises: CacheControl's own
freshness check, requests building its ``Response``, pip reading status, reason, headers and
body), ``"skipped"`` (the controller itself turns the loaded response away, e.g. no ``Date``) or
``"usable"``.

``damage(rng, flavour, entry)`` returns one generated damage of a valid entry and names it: bit
flips, truncations, insertions, deletions, overwrites, random ``cc=`` prefixes and well-formed
msgpack of the wrong shape or type anywhere in the document. Used by ``tests/test_fuzz.py`` and
``benchmarks/fuzz_diagnose.py``; the process must not have the guard's finder active.
"""

from __future__ import annotations

import contextlib
import email.utils
import importlib
import importlib.metadata
import io
import random
import re
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from pip_cache_guard.diagnose import PIP_VENDORED, Reader, Verdict, standalone_reader

URL = "https://files.example/packages/demo-1.0-py3-none-any.whl"
BODY = b"wheel bytes " * 100
# Headers of a fresh, cacheable wheel download as an index serves it: the controller returns it.
RESPONSE_HEADERS = {
    "Content-Type": "application/octet-stream",
    "ETag": '"abc"',
    "Content-Length": str(len(BODY)),
    "Cache-Control": "max-age=365000000",
    "Vary": "Accept-Encoding",
}
REQUEST_HEADERS = {"Accept-Encoding": "identity"}
OUTCOMES = ("none", "raises", "chokes", "skipped", "usable")


class Flavour:
    """One CacheControl copy: its Serializer, controller, msgpack, requests and urllib3."""

    def __init__(self, serialize_name: str) -> None:
        self.name = serialize_name.rsplit(".serialize", 1)[0]
        self.serialize: ModuleType = importlib.import_module(serialize_name)
        root = serialize_name.rsplit(".cachecontrol.", 1)[0] if "._vendor" in serialize_name else ""
        prefix = f"{root}." if root else ""
        self.requests = importlib.import_module(f"{prefix}requests")
        self.adapters = importlib.import_module(f"{prefix}requests.adapters")
        self.urllib3 = importlib.import_module(f"{prefix}urllib3")
        self.controller = importlib.import_module(f"{self.name}.controller")
        self.cache = importlib.import_module(f"{self.name}.cache")
        self.msgpack = self.serialize.msgpack
        self.separate_body = "body_file" in self.serialize.Serializer.loads.__code__.co_varnames
        # The rule the classifier is to follow for this copy (``diagnose.Reader``).
        self.reader: Reader = (
            PIP_VENDORED if root else standalone_reader(importlib.metadata.version("cachecontrol"))
        )

    def unpack(self, payload: bytes) -> Any:
        return self.msgpack.loads(payload, raw=False)

    def pack(self, document: Any, use_bin_type: bool = True) -> bytes:
        return bytes(self.msgpack.dumps(document, use_bin_type=use_bin_type))

    def request(self, headers: dict[str, str] | None = None) -> Any:
        request = self.requests.Request("GET", URL, headers=headers or {})
        return request.prepare()

    def entry(
        self,
        response_headers: dict[str, str] | None = None,
        request_headers: dict[str, str] | None = None,
        status: int = 200,
    ) -> bytes:
        """Metadata bytes written by the real serializer, as pip writes them."""
        headers = RESPONSE_HEADERS if response_headers is None else response_headers
        headers = {"Date": email.utils.formatdate(time.time(), usegmt=True), **headers}
        response = self.urllib3.HTTPResponse(
            body=io.BytesIO(BODY),
            headers=headers,
            status=status,
            preload_content=False,
            decode_content=False,
        )
        body = b"" if self.separate_body else BODY
        request = self.request(REQUEST_HEADERS if request_headers is None else request_headers)
        return bytes(self.serialize.Serializer().dumps(request, response, body))

    def load(self, data: bytes, request_headers: dict[str, str] | None = None) -> str:
        """What the real ``Serializer.loads`` does: "response", "none" or "raises"."""
        headers = REQUEST_HEADERS if request_headers is None else request_headers
        try:
            result = self.serialize.Serializer().loads(*self._loads_args(data, headers))
        except Exception:
            return "raises"
        return "none" if result is None else "response"

    def outcome(self, data: bytes, request_headers: dict[str, str] | None = None) -> str:
        """What pip gets from these bytes, through the real controller: one of ``OUTCOMES``."""
        loaded = self.load(data, request_headers)
        if loaded != "response":
            return loaded
        request = self.request(REQUEST_HEADERS if request_headers is None else request_headers)
        controller = self.controller.CacheController(self._cache_holding(data))
        try:
            response = controller.cached_request(request)
        except Exception:
            return "chokes"
        if response is False:
            return "skipped"
        try:
            _use_as_pip_does(self.adapters.HTTPAdapter().build_response(request, response))
        except Exception:
            return "chokes"
        return "usable"

    def _loads_args(self, data: bytes, request_headers: dict[str, str]) -> list[Any]:
        args: list[Any] = [self.request(request_headers), data]
        if self.separate_body:
            args.append(io.BytesIO(BODY))
        return args

    def _cache_holding(self, data: bytes) -> Any:
        """A cache with one entry under every key: the controller finds ``data`` whatever URL."""
        separate = getattr(self.cache, "SeparateBodyBaseCache", None)
        base = separate if separate is not None and self.separate_body else self.cache.BaseCache

        class OneEntry(base):  # type: ignore[misc, valid-type]
            def get(self, key: str) -> bytes:
                return data

            def get_body(self, key: str) -> io.BytesIO:
                return io.BytesIO(BODY)

            def set(self, *args: Any, **kwargs: Any) -> None:
                pass

            def delete(self, key: str) -> None:
                pass

        return OneEntry()


def _use_as_pip_does(response: Any) -> None:
    """What pip does with a cached response before and while it saves the file.

    ``raise_for_status`` (pip/_internal/network/utils.py) reads reason and compares status,
    the download reads Content-Type, Content-Length and the body chunks without decoding.
    """
    reason = response.reason
    if isinstance(reason, bytes):
        reason.decode("utf-8")
    if 400 <= response.status_code < 600:
        pass
    response.headers.get("Content-Type", "Unknown").lower()
    with contextlib.suppress(ValueError, KeyError, TypeError):
        int(response.headers["content-length"])
    b"".join(response.raw.stream(4096, decode_content=False))


# -- generated damage ------------------------------------------------------------------------

Damage = Callable[[random.Random, Flavour, bytes], bytes]


def _bit_flips(rng: random.Random, flavour: Flavour, entry: bytes) -> bytes:
    damaged = bytearray(entry)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        damaged[rng.randrange(len(damaged))] ^= 1 << rng.randrange(8)
    return bytes(damaged)


def _truncation(rng: random.Random, flavour: Flavour, entry: bytes) -> bytes:
    return entry[: rng.randrange(len(entry))]


def _insertion(rng: random.Random, flavour: Flavour, entry: bytes) -> bytes:
    at = rng.randrange(len(entry) + 1)
    return entry[:at] + rng.randbytes(rng.randint(1, 8)) + entry[at:]


def _deletion(rng: random.Random, flavour: Flavour, entry: bytes) -> bytes:
    at = rng.randrange(len(entry))
    return entry[:at] + entry[at + rng.randint(1, 8) :]


def _overwrite(rng: random.Random, flavour: Flavour, entry: bytes) -> bytes:
    at = rng.randrange(len(entry))
    noise = rng.choice((rng.randbytes(rng.randint(1, 16)), b"\0" * rng.randint(1, 4096)))
    return (entry[:at] + noise + entry[at + len(noise) :])[: max(len(entry), at + len(noise))]


_PREFIXES = [
    b"", b"cc=", b"cc=4", b"cc=,", b"cc=0,", b"cc=1,", b"cc=2,", b"cc=3,", b"cc=5,", b"cc=04,",
    b"cc=4 ,", b"cc= 4,", b"CC=4,", b"cc=-4,", b"cc=+4,", b"cc=4.0,", b"cc=\xd9\xa4,", b"c=4,",
    b"cc=4,cc=4,", b"cc:4,", b"cc=44,", b"cc=4\n,", b",", b"cc=4,,",
]  # fmt: skip


def _prefix(rng: random.Random, flavour: Flavour, entry: bytes) -> bytes:
    if rng.random() < 0.3:
        prefix = b"cc=" + str(rng.randint(0, 10 ** rng.randint(1, 6))).encode() + b","
    elif rng.random() < 0.2:
        prefix = rng.randbytes(rng.randint(0, 6)) + b","
    else:
        prefix = rng.choice(_PREFIXES)
    return prefix + entry[5:]


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    """A msgpack-able value of any type, nested a little."""
    kind = rng.randrange(14 if depth < 2 else 10)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice((0, 1, -1, 200, 301, 11, 2**63 - 1, -(2**63), 2**64 - 1))
    if kind == 3:
        return rng.randint(-(2**31), 2**31)
    if kind == 4:
        return rng.choice((0.0, 200.0, -1.5, float("inf"), float("nan")))
    if kind == 5:
        return rng.choice(("", "200", "OK", "x" * 300, "\u00e9t\u00e9", "chunked", "a,b"))
    if kind == 6:
        return rng.randbytes(rng.randint(0, 20))
    if kind == 7:
        return rng.choice((b"", b"OK", b"200"))
    if kind == 8:
        return _header_text(rng)
    if kind == 9:
        return rng.choice((True, False, None, ""))
    if kind == 10:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if kind == 11:
        return {_random_key(rng): _random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}
    if kind == 12:
        return {rng.choice(("Date", "ETag")): _random_value(rng, depth + 1)}
    return ("ext", rng.randint(-128, 127), rng.randbytes(rng.randint(0, 12)))


def _random_key(rng: random.Random) -> Any:
    return rng.choice(("body", "headers", "status", "x", "", b"status", b"x", 1, None, 1.5))


# Header values that are text but mean trouble to CacheControl, urllib3 or pip.
_HEADER_TEXTS = [
    "", " ", "garbage", "Fri, 27 Nov 2026 08:00:00 GMT", "Fri, 27 Nov 2026 08:00:00",
    "27 Nov 2026", "Mon, 99 Foo 2026 99:99:99 GMT", "0", "-1", "12, 13", "1200, 1200", "1200,",
    "99999999999999999999", "chunked", "gzip, chunked", "Chunked", "identity", "gzip", "*",
    "Fri, 27 Nov 99999 08:00:00 GMT", "Fri, 27 Nov 0 08:00:00 GMT", "Thu, 01 Jan 1970 00:00:00",
    "max-age=abc", "max-age=-5", "max-age=0", "no-store", "\u00e9", "Accept-Encoding, *",
    "text/html",
]  # fmt: skip


def _header_text(rng: random.Random) -> str:
    return rng.choice(_HEADER_TEXTS)


_HEADER_NAMES = [
    "Date", "date", "DATE", "Content-Length", "content-length", "Transfer-Encoding",
    "Content-Type", "Cache-Control", "Expires", "ETag", "Last-Modified", "Vary", "Location",
    "Content-Encoding", "X-Other",
]  # fmt: skip


def _mutate(rng: random.Random, document: Any) -> Any:
    """One structural or type change somewhere in a decoded document."""
    if not isinstance(document, dict) or not isinstance(document.get("response"), dict):
        return _random_value(rng)
    response = dict(document["response"])
    headers = dict(response["headers"]) if isinstance(response.get("headers"), dict) else {}
    vary = dict(document["vary"]) if isinstance(document.get("vary"), dict) else {}
    choice = rng.randrange(10)
    if choice == 0:
        return _random_value(rng)  # the whole document
    if choice == 1:
        document = {**document, rng.choice(("response", "vary", "other")): _random_value(rng)}
        return document
    if choice == 2:
        response.pop(rng.choice(sorted(response, key=repr) or ["body"]), None)
    elif choice == 3:
        response[_random_key(rng)] = _random_value(rng)
    elif choice == 4:
        response[rng.choice(sorted(response, key=repr) or ["body"])] = _random_value(rng)
    elif choice in (5, 6):
        headers[rng.choice(_HEADER_NAMES)] = _header_text(rng)
        response["headers"] = headers
    elif choice == 7:
        headers[rng.choice((*_HEADER_NAMES, b"Date", 1))] = _random_value(rng)
        response["headers"] = headers
    elif choice == 8:
        headers.pop(rng.choice(sorted(headers, key=repr) or ["Date"]), None)
        response["headers"] = headers
    else:
        vary[rng.choice(("Accept-Encoding", "accept-encoding", "*", "User-Agent", b"X"))] = (
            rng.choice((None, "identity", "gzip", 1, b"identity", ["identity"]))
        )
        return {**document, "vary": vary}
    return {**document, "response": response}


def _shape(rng: random.Random, flavour: Flavour, entry: bytes) -> bytes:
    try:
        document = flavour.unpack(entry[5:])
    except Exception:  # a stacked damage: the payload is already broken
        document = _random_value(rng)
    for _ in range(rng.choice((1, 1, 2))):
        document = _mutate(rng, document)
    document = _to_msgpack_types(flavour, document)
    return b"cc=4," + flavour.pack(document, use_bin_type=rng.random() < 0.9)


def _to_msgpack_types(flavour: Flavour, value: Any) -> Any:
    """Turn the ``("ext", code, data)`` markers of ``_random_value`` into msgpack ExtTypes."""
    if isinstance(value, tuple) and len(value) == 3 and value[0] == "ext":
        return flavour.msgpack.ExtType(value[1] % 128, value[2])
    if isinstance(value, dict):
        return {
            _to_msgpack_types(flavour, key): _to_msgpack_types(flavour, item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_to_msgpack_types(flavour, item) for item in value]
    return value


DAMAGES: dict[str, Damage] = {
    "bit-flip": _bit_flips,
    "truncation": _truncation,
    "insertion": _insertion,
    "deletion": _deletion,
    "overwrite": _overwrite,
    "prefix": _prefix,
    "shape": _shape,
}


def damage(rng: random.Random, flavour: Flavour, entry: bytes) -> tuple[str, bytes]:
    """One random damage of ``entry`` (sometimes two stacked), and its name."""
    name = rng.choice(sorted(DAMAGES))
    damaged = DAMAGES[name](rng, flavour, entry)
    if rng.random() < 0.1:
        second = rng.choice(sorted(DAMAGES))
        if damaged:
            damaged = DAMAGES[second](rng, flavour, damaged)
            name = f"{name}+{second}"
    return name, damaged


# Verdicts stricter than the loaders on purpose: a value of a type no CacheControl ever wrote (a
# flipped msgpack type byte), no status, a Date no CacheControl would have stored, a body file of
# another size than the headers say. pip may still read such an entry, but nothing good is lost.
DELIBERATELY_STRICT = re.compile(
    r"response '\w+' is a |lacks 'status'|not all text|Date header|body file holds"
)


def violation(verdict: Verdict, outcome: str) -> str | None:
    """What is wrong with a verdict, given what pip got from the same bytes; None if nothing.

    ``ok`` must be usable (or turned away by CacheControl itself); ``vary-mismatch`` must be a
    miss; damage must not be what pip can use, unless it is deliberately strict.
    """
    if verdict.kind == "ok" and outcome not in ("usable", "skipped"):
        return f"called ok, but pip's loader gives {outcome!r}"
    if verdict.kind == "vary-mismatch" and outcome != "none":
        return f"called vary-mismatch, but pip's loader gives {outcome!r}"
    if verdict.is_damage and outcome == "usable" and not DELIBERATELY_STRICT.search(verdict.reason):
        return f"called {verdict.kind} ({verdict.reason}), but pip can use it"
    return None
