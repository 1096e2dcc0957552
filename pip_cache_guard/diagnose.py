"""Why a cache entry cannot be used: one classifier for the hook and for ``verify``.

The functions here are pure: they get the exact bytes of a metadata file (and, when known, the
headers of the request that asked for it and the size of its body file) and return a ``Verdict``.
They repeat the checks of CacheControl's ``Serializer.loads`` (every version pip vendored since
21.3) so that the guard can tell apart what made pip skip or choke on an entry:

- ``corrupt``: the file cannot be a cache entry (empty, no ``cc=`` prefix, undecodable or truncated
  msgpack, a document of the wrong shape, which makes pip raise on every run);
- ``stale-format``: a well-formed ``cc=N`` prefix of another serializer version;
- ``vary-mismatch``: a valid entry recorded for other request headers (not damage);
- ``body-mismatch``: a valid entry whose separate body file has another size than its headers say;
- ``missing-body``: metadata of a cache that keeps bodies apart, without its body file (the second
  of the entry's two writes has not happened: in progress, or interrupted). pip's own cache class
  never serves such an entry; standalone CacheControl's ``SeparateBodyFileCache`` serves it with an
  empty body (``IncompleteRead``, or an empty 200).

Two kinds are judged by what pip does with a downloaded body
(``hook.rejected_files.evict_rejected``), not here: ``bad-body`` (a cached file pip could not use:
it failed pip's hash check, or its archive cannot be read) is damage; ``index-mismatch`` (it fails
again after a fresh download) is not.
"""

from __future__ import annotations

import calendar
import email.utils
import re
import zipfile
import zlib
from collections.abc import Mapping
from typing import Any, Callable, Literal, NamedTuple

Kind = Literal["ok", "corrupt", "stale-format", "vary-mismatch", "body-mismatch", "missing-body"]

# Kinds that prove the files useless: the guard deletes them (a missing body only once it cannot
# be a write in progress). A Vary mismatch is a valid entry, and an index-mismatch is the index's
# fault, not the cache's. Besides the verdicts of ``diagnose``: ``bad-body`` (a cached body pip
# could not use), ``bad-wheel`` (a cached built wheel ``wheel_problem`` rejects, or its damaged
# origin.json) and ``bad-page`` (an index page pip cannot parse).
DAMAGE_KINDS: frozenset[str] = frozenset(
    {
        "corrupt",
        "stale-format",
        "body-mismatch",
        "missing-body",
        "bad-body",
        "bad-wheel",
        "bad-page",
    }
)

# The version CacheControl has written since 0.12 (pip 10 onwards): b"cc=4," + msgpack.
CURRENT_FORMAT = b"4"

# The document every CacheControl since 0.12 writes: {"response": {...}, "vary": {...}}. The fields
# of "response" become keyword arguments of urllib3's HTTPResponse, so another key makes pip raise.
# The loader pops "body" and pip needs "headers" and "status"; urllib3 has defaults for the others,
# so a future CacheControl may stop writing them (0.13 stopped writing "strict", which older ones
# wrote and newer ones discard): their absence is not damage. Present with a type no CacheControl
# ever wrote, they are (a flipped type byte). Top-level keys other than these two are ignored by
# the loader, and so here.
_REQUIRED_RESPONSE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "body": bytes,
    "headers": dict,
    "status": int,
}
_OPTIONAL_RESPONSE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "version": int,
    "reason": str,
    "decode_content": bool,
    "strict": object,
}
_PERMANENT_REDIRECTS = (301, 308)

Unpack = Callable[[bytes], Any]


class Reader(NamedTuple):
    """The CacheControl that will read an entry, as far as a verdict depends on which one it is.

    CacheControl 0.15 reads a stored ``Date`` that ``parsedate_tz`` cannot parse as a miss and
    keeps the entry for revalidation; 0.12-0.14 (every pip up to 26.3 vendors one) fail on it.
    """

    name: str  # names the rule applied: "pip's vendored CacheControl", "cachecontrol 0.15.0"
    keeps_unparsable_date: bool


PIP_VENDORED = Reader("pip's vendored CacheControl", False)


def standalone_reader(version: str) -> Reader:
    """The rule of the standalone ``cachecontrol`` of this version (``importlib.metadata``'s)."""
    return Reader(f"cachecontrol {version}", _release(version) >= (0, 15))


def _release(version: str) -> tuple[int, ...]:
    """The leading numbers of a version ("0.15.0rc1" -> (0, 15, 0)); enough to compare releases."""
    leading = re.match(r"\d+(?:\.\d+)*", version)
    return tuple(int(part) for part in leading.group().split(".")) if leading else ()


class Verdict(NamedTuple):
    """What is wrong with one entry, in words a user can act on (a NamedTuple: cheaper to create
    than a dataclass inside every pip run)."""

    kind: Kind
    reason: str

    @property
    def is_damage(self) -> bool:
        """True when the entry's files are useless and may be deleted."""
        return self.kind in DAMAGE_KINDS


OK = Verdict("ok", "valid entry")
MISSING_BODY = Verdict(
    "missing-body", "metadata without its .body file (the entry's second write never happened)"
)


def diagnose(
    data: bytes,
    unpack: Unpack,
    request_headers: Mapping[str, str] | None = None,
    body_size: int | None = None,
    reader: Reader = PIP_VENDORED,
) -> Verdict:
    """Classify the metadata bytes of one entry.

    ``unpack`` is the msgpack decoder of the CacheControl copy that reads the cache (inside pip,
    pip's vendored msgpack), called as ``unpack(payload)``. ``request_headers`` enables the Vary
    check (the hook knows the request; a whole-cache scan does not). ``body_size`` is the size of
    the separate ``.body`` file, if the entry has one. ``reader`` is the CacheControl that will
    read the entry.
    """
    format_verdict, payload = _split_format(data)
    if format_verdict is not None:
        return format_verdict
    try:
        document = unpack(payload)
    except Exception as exc:  # msgpack raises ValueError subclasses, TypeError for bad keys
        return Verdict("corrupt", f"metadata is not valid msgpack ({_describe(exc)})")
    return judge_document(document, request_headers, body_size, reader)


def judge_document(
    document: Any,
    request_headers: Mapping[str, str] | None = None,
    body_size: int | None = None,
    reader: Reader = PIP_VENDORED,
) -> Verdict:
    """Classify the decoded document of a ``cc=4`` entry (``diagnose`` after decoding).

    The hook calls it on the document pip's own serializer just decoded, so that judging a hit
    costs no second decode; it never changes ``document``.
    """
    shape_problem = _shape_problem(document, reader)
    if shape_problem is not None:
        return Verdict("corrupt", f"metadata has the wrong shape: {shape_problem}")
    if request_headers is not None:
        vary_problem = _vary_problem(document.get("vary", {}), request_headers)
        if vary_problem is not None:
            return Verdict("vary-mismatch", vary_problem)
    if body_size is not None:
        response = document["response"]
        body_problem = body_size_problem(response["status"], response["headers"], body_size)
        if body_problem is not None:
            return Verdict("body-mismatch", body_problem)
    return OK


def stored_body(data: bytes, unpack: Unpack) -> bytes | None:
    """The body kept inside a metadata file (pip <= 23.2), or None if it is not a valid entry."""
    format_verdict, payload = _split_format(data)
    if format_verdict is not None:
        return None
    try:
        document = unpack(payload)
    except Exception:
        return None
    if _shape_problem(document) is not None:
        return None
    body: bytes = document["response"]["body"]
    return body


def is_current_format(data: bytes) -> bool:
    """Whether ``data`` starts with the prefix of the format CacheControl writes (``cc=4,``)."""
    return data.startswith(b"cc=" + CURRENT_FORMAT + b",")


def _split_format(data: bytes) -> tuple[Verdict | None, bytes]:
    """Check the ``cc=N,`` prefix; return a verdict if it already decides, else the payload."""
    if not data:
        return Verdict("corrupt", "metadata file is empty"), b""
    if not data.startswith(b"cc="):
        return Verdict("corrupt", "metadata has no cc= format prefix (overwritten or garbage)"), b""
    version, comma, payload = data.partition(b",")
    if not comma:
        return Verdict("corrupt", "metadata is truncated inside its format prefix"), b""
    number = version[3:]  # after "cc="
    if not number.isdigit():  # bytes.isdigit: ASCII digits only, and at least one
        return Verdict("corrupt", "metadata has a malformed format prefix"), b""
    if number != CURRENT_FORMAT:
        return (
            Verdict(
                "stale-format",
                f"format cc={number.decode('ascii')} (written by an old pip or another tool)",
            ),
            b"",
        )
    return None, payload


def _shape_problem(document: Any, reader: Reader = PIP_VENDORED) -> str | None:
    """Name the first way the decoded document differs from what CacheControl stores."""
    if not isinstance(document, dict):
        return f"a {type(document).__name__} instead of a mapping"
    response = document.get("response")
    if not isinstance(response, dict):
        return "no response mapping"
    for field in _REQUIRED_RESPONSE_FIELDS:
        if field not in response:
            return f"response lacks {field!r}"
    for field, value in response.items():
        expected_type = _REQUIRED_RESPONSE_FIELDS.get(field) or _OPTIONAL_RESPONSE_FIELDS.get(field)
        if expected_type is None:
            return f"response has unexpected field {field!r}"
        if not isinstance(value, expected_type):
            return f"response {field!r} is a {type(value).__name__}"
    headers = response["headers"]
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        return "response headers are not all text"
    header_problem = _header_problem(response["status"], headers, reader)
    if header_problem is not None:
        return header_problem
    vary = document.get("vary", {})
    if not isinstance(vary, dict):
        return f"vary is a {type(vary).__name__}"
    if not all(isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in vary.items()):
        return "vary headers are not all text"
    return None


def _header_problem(status: int, headers: Mapping[str, str], reader: Reader) -> str | None:
    """Name a stored header that makes CacheControl or urllib3 raise on every load.

    CacheControl 0.12.11-0.14 returns a cached permanent redirect before it reads ``Date``, so there
    an unreadable Date is left alone (0.12.6, pip 21.3, stored such an entry under an ETag without
    reading its Date); on any other entry they fail on it. 0.15 reads ``Date`` of every entry: one
    ``parsedate_tz`` cannot parse is a miss (the entry is kept for revalidation), one it parses into
    a date ``calendar.timegm`` refuses still raises. Newer CacheControl parses ``Date`` before
    storing, and urllib3 refuses differing ``Content-Length`` values on the wire: no current writer
    stores these. Names are looked up case-insensitively, the last spelling winning, as
    ``CaseInsensitiveDict`` does.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    date = lowered.get("date")
    if date is not None:
        readable = _date_readability(date)
        fails = (
            readable == "raises"
            if reader.keeps_unparsable_date
            else readable != "ok" and status not in _PERMANENT_REDIRECTS
        )
        if fails:
            return f"its Date header cannot be read as a date ({reader.name} fails on it)"
    transfer_encoding = lowered.get("transfer-encoding", "")
    if transfer_encoding == "chunked":  # the loader drops exactly this value
        transfer_encoding = ""
    chunked = "chunked" in (part.strip() for part in transfer_encoding.lower().split(","))
    length = lowered.get("content-length")
    if length is not None and not chunked and len(_lengths(length)) > 1:
        return "its Content-Length header holds differing values (urllib3 refuses it)"
    return None


def _date_readability(value: str) -> Literal["ok", "unparsable", "raises"]:
    """What CacheControl's freshness check gets from ``Date``: ``parsedate_tz``, then ``timegm``."""
    try:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return "unparsable"
        calendar.timegm(parsed[:6])
    except Exception:  # the stdlib parser raises on some garbage; so would pip
        return "raises"
    return "ok"


def _lengths(value: str) -> set[int]:
    """The distinct numbers of a Content-Length, as urllib3 reads it; empty if one is no number."""
    try:
        return {int(part) for part in value.split(",")}
    except ValueError:
        return set()


def _vary_problem(vary: Mapping[str, str | None], request_headers: Mapping[str, str]) -> str | None:
    """Repeat CacheControl's Vary check; name only header names (their values may be secrets)."""
    if "*" in vary:
        return "stored with 'Vary: *', which never matches a request"
    lowered = {name.lower(): value for name, value in request_headers.items()}
    differing = [name for name, value in vary.items() if lowered.get(name.lower()) != value]
    if differing:
        names = ", ".join(sorted(differing))
        return f"valid entry stored for another value of the request header(s) {names}"
    return None


def body_size_problem(status: int, headers: Mapping[str, str], body_size: int) -> str | None:
    """Compare a body file's size with the cached ``Content-Length``; None if they agree or if
    nothing can be proven.

    Only a 200 response stores the body it announced: CacheControl caches a permanent redirect
    (301/308) with an empty body whatever its Content-Length says. A status that has no body
    (1xx, 204, 304; CacheControl never caches one) with a non-empty body file makes urllib3 2
    refuse to read it.
    """
    if (100 <= status < 200 or status in (204, 304)) and body_size > 0:
        return f"body file holds {body_size} bytes, but status {status} has no body"
    if status != 200:
        return None
    declared = _content_length(headers)
    if declared is None or declared == body_size:
        return None
    return f"body file holds {body_size} bytes, its headers promise {declared}"


def _content_length(headers: Mapping[str, str]) -> int | None:
    """The declared length of the stored body, or None when it cannot be trusted to be one.

    CacheControl stores the body as it came off the wire, so Content-Length should match even for
    a compressed body; we still only trust it for identity encoding (what pip asks for when it
    downloads files), so that a proxy's odd headers can never get a good entry deleted."""
    lowered = {name.lower(): value for name, value in headers.items()}
    encoding = lowered.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity") or "transfer-encoding" in lowered:
        return None
    raw = lowered.get("content-length", "").strip()
    return int(raw) if raw.isdigit() else None


def wheel_problem(path: str) -> str | None:
    """Why a wheel file pip built and cached cannot be used, or None when it can.

    Reads what pip reads before it trusts a wheel: the zip's central directory, every member's
    local header (a mismatch with the directory makes pip's install raise), exactly one
    ``*.dist-info`` directory and its ``WHEEL``, ``METADATA`` and ``RECORD`` with their CRCs. The
    payload is not decompressed: that would read the whole wheel on every lookup.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            for member in members:
                archive.open(member).close()  # reads and checks the local header only
            info_dirs = {
                member.filename.split("/", 1)[0]
                for member in members
                if member.filename.split("/", 1)[0].endswith(".dist-info")
            }
            if len(info_dirs) != 1:
                return f"not a wheel: {len(info_dirs)} .dist-info directories"
            (info_dir,) = info_dirs
            for name in ("WHEEL", "METADATA", "RECORD"):
                archive.read(f"{info_dir}/{name}")
    except KeyError as exc:
        return f"not a wheel: {exc.args[0] if exc.args else 'a required file'} is missing"
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, RuntimeError) as exc:
        # RuntimeError: a damaged flag that says "encrypted"; NotImplementedError (a subclass):
        # a damaged compression method. pip raises the same on both.
        return f"not a readable zip file ({_describe(exc)})"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    return None


def _describe(exc: Exception) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
