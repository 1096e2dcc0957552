"""The classifier against the real serializers: pip's vendored CacheControl and standalone 0.14.

Every case is checked twice: what ``diagnose`` says, and what the real ``Serializer.loads`` does
with the same bytes (return a response, return None, or raise; ``Flavour.outcome`` also runs the
real controller on what was loaded). The property tests tie the two together: whatever pip can use,
the classifier must call ``ok``, so the guard can never delete an entry pip could have used.
``tests/test_fuzz.py`` adds generated damage.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pip_cache_guard.diagnose import diagnose, judge_document, stored_body

from support.loaders import BODY, Flavour, violation

SERIALIZE_MODULES = ["pip._vendor.cachecontrol.serialize", "cachecontrol.serialize"]


@pytest.fixture(params=SERIALIZE_MODULES, scope="module")
def flavour(request: pytest.FixtureRequest) -> Flavour:
    return Flavour(request.param)


HEADERS = {"Content-Type": "application/octet-stream", "ETag": '"abc"', "Content-Length": "1200"}


def _packed(flavour: Flavour, document: Any) -> bytes:
    return b"cc=4," + bytes(flavour.msgpack.dumps(document, use_bin_type=True))


def _document(flavour: Flavour, entry: bytes) -> dict[str, Any]:
    return dict(flavour.unpack(entry[5:]))


DamageCase = Callable[[Flavour, bytes], bytes]
# name: (damage, expected kind); each damage takes a valid entry and returns the damaged bytes.
DAMAGE: dict[str, tuple[DamageCase, str]] = {
    "empty": (lambda f, e: b"", "corrupt"),
    "garbage": (lambda f, e: bytes(range(7, 250)), "corrupt"),
    "zero-filled": (lambda f, e: b"\0" * len(e), "corrupt"),
    "prefix-only": (lambda f, e: b"cc=4", "corrupt"),
    "truncated-msgpack": (lambda f, e: e[: len(e) // 2], "corrupt"),
    "msgpack-garbage": (lambda f, e: b"cc=4," + b"\xc1" * 20, "corrupt"),
    "non-ascii-version": (lambda f, e: b"cc=\xff," + e[5:], "corrupt"),
    "old-format-2": (lambda f, e: b"cc=2,eJzLSM3JyVcozy/KSQEAGgQEXQ==", "stale-format"),
    "unknown-format-9": (lambda f, e: b"cc=9," + e[5:], "stale-format"),
    "list-document": (lambda f, e: _packed(f, [1, 2, 3]), "corrupt"),
    "no-response": (lambda f, e: _packed(f, {"vary": {}}), "corrupt"),
    "response-not-mapping": (lambda f, e: _packed(f, {"response": "x", "vary": {}}), "corrupt"),
    "unexpected-response-field": (
        lambda f, e: _packed(
            f, {**_document(f, e), "response": {**_document(f, e)["response"], "color": 1}}
        ),
        "corrupt",
    ),
    "headers-not-mapping": (
        lambda f, e: _packed(
            f, {**_document(f, e), "response": {**_document(f, e)["response"], "headers": 5}}
        ),
        "corrupt",
    ),
    "vary-not-mapping": (lambda f, e: _packed(f, {**_document(f, e), "vary": [1]}), "corrupt"),
}


@pytest.mark.parametrize("name", sorted(DAMAGE))
def test_damage_is_classified_and_the_real_loader_cannot_use_it(
    flavour: Flavour, name: str
) -> None:
    damage, expected_kind = DAMAGE[name]
    damaged = damage(flavour, flavour.entry(HEADERS, {}))

    verdict = diagnose(damaged, flavour.unpack, {}, reader=flavour.reader)

    assert verdict.kind == expected_kind, verdict.reason
    assert verdict.is_damage
    assert flavour.load(damaged, {}) in ("none", "raises")


def test_wrong_shapes_are_what_make_pip_raise(flavour: Flavour) -> None:
    entry = flavour.entry(HEADERS, {})
    raising = [
        name
        for name in ("no-response", "unexpected-response-field", "vary-not-mapping")
        if flavour.load(DAMAGE[name][0](flavour, entry), {}) == "raises"
    ]
    assert raising, "these shapes crash every CacheControl pip has vendored"


def test_valid_entry_is_ok(flavour: Flavour) -> None:
    entry = flavour.entry(HEADERS, {"Accept-Encoding": "identity"})

    assert (
        diagnose(entry, flavour.unpack, {"Accept-Encoding": "identity"}, reader=flavour.reader).kind
        == "ok"
    )
    assert diagnose(entry, flavour.unpack, reader=flavour.reader).kind == "ok"
    assert flavour.load(entry, {"Accept-Encoding": "identity"}) == "response"


def test_vary_mismatch_is_valid_and_never_damage(flavour: Flavour) -> None:
    headers = {**HEADERS, "Vary": "Accept-Encoding"}
    entry = flavour.entry(headers, {"Accept-Encoding": "gzip, deflate"})

    verdict = diagnose(
        entry, flavour.unpack, {"accept-encoding": "gzip, deflate, zstd"}, reader=flavour.reader
    )

    assert verdict.kind == "vary-mismatch"
    assert not verdict.is_damage
    assert "Accept-Encoding" in verdict.reason
    assert "zstd" not in verdict.reason  # header values may be secrets: never echoed
    assert flavour.load(entry, {"Accept-Encoding": "gzip, deflate, zstd"}) == "none"
    # Without a request (a whole-cache scan) the same entry is simply valid.
    assert diagnose(entry, flavour.unpack, reader=flavour.reader).kind == "ok"


def test_vary_star_is_not_damage(flavour: Flavour) -> None:
    document = _document(flavour, flavour.entry(HEADERS, {}))
    entry = _packed(flavour, {**document, "vary": {"*": None}})

    assert diagnose(entry, flavour.unpack, {}, reader=flavour.reader).kind == "vary-mismatch"
    assert flavour.load(entry, {}) == "none"


def test_body_size_disagreeing_with_content_length_is_body_mismatch(flavour: Flavour) -> None:
    entry = flavour.entry(HEADERS, {})

    assert diagnose(entry, flavour.unpack, {}, body_size=1200, reader=flavour.reader).kind == "ok"
    verdict = diagnose(entry, flavour.unpack, {}, body_size=500, reader=flavour.reader)
    assert verdict.kind == "body-mismatch"
    assert "500" in verdict.reason and "1200" in verdict.reason


def test_body_size_is_not_judged_without_a_plain_content_length(flavour: Flavour) -> None:
    no_length = {key: value for key, value in HEADERS.items() if key != "Content-Length"}
    gzip = {**HEADERS, "Content-Encoding": "gzip"}

    assert (
        diagnose(
            flavour.entry(no_length, {}), flavour.unpack, body_size=3, reader=flavour.reader
        ).kind
        == "ok"
    )
    assert (
        diagnose(flavour.entry(gzip, {}), flavour.unpack, body_size=3, reader=flavour.reader).kind
        == "ok"
    )


def test_every_truncation_of_a_valid_entry_is_corrupt(flavour: Flavour) -> None:
    entry = flavour.entry({**HEADERS, "Vary": "Accept-Encoding"}, {"Accept-Encoding": "identity"})
    for length in range(len(entry)):
        verdict = diagnose(
            entry[:length], flavour.unpack, {"Accept-Encoding": "identity"}, reader=flavour.reader
        )
        assert verdict.kind == "corrupt", (length, verdict)


header_names = st.sampled_from(["ETag", "Date", "X-Served-By", "Last-Modified", "Content-Length"])
# Values requests accepts in a header: no leading white space, printable ASCII.
header_values = st.from_regex(r"([!-~][ -~]{0,20})?", fullmatch=True).map(str.rstrip)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    response_headers=st.dictionaries(header_names, header_values, max_size=5),
    vary=st.lists(st.sampled_from(["Accept-Encoding", "Accept", "User-Agent"]), max_size=3),
    request_headers=st.dictionaries(
        st.sampled_from(["Accept-Encoding", "Accept", "User-Agent"]), header_values, max_size=3
    ),
    other_request=st.dictionaries(
        st.sampled_from(["Accept-Encoding", "Accept", "User-Agent"]), header_values, max_size=3
    ),
)
def test_whatever_the_real_loader_accepts_is_ok(
    flavour: Flavour,
    response_headers: dict[str, str],
    vary: list[str],
    request_headers: dict[str, str],
    other_request: dict[str, str],
) -> None:
    if vary:
        response_headers = {**response_headers, "Vary": ", ".join(vary)}
    entry = flavour.entry(response_headers, request_headers)

    for headers in (request_headers, other_request):
        outcome = flavour.outcome(entry, headers)
        verdict = diagnose(entry, flavour.unpack, headers, reader=flavour.reader)
        assert violation(verdict, outcome) is None, (outcome, verdict)
        # Only an unreadable Date makes CacheControl choke on what it loaded.
        assert (outcome in ("usable", "skipped")) == (verdict.kind == "ok"), (outcome, verdict)
        assert not verdict.is_damage or "Date" in verdict.reason


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(noise=st.binary(max_size=200), cut=st.integers(min_value=0, max_value=400))
def test_damaged_bytes_called_ok_are_always_loadable(
    flavour: Flavour, noise: bytes, cut: int
) -> None:
    entry = flavour.entry(HEADERS, {})
    for damaged in (noise, entry[:cut] + noise, b"cc=4," + noise):
        verdict = diagnose(damaged, flavour.unpack, {}, reader=flavour.reader)
        if verdict.kind == "ok":
            assert flavour.load(damaged, {}) == "response"
        else:
            assert flavour.load(damaged, {}) in ("none", "raises")


def test_standalone_msgpack_agrees_with_vendored(flavour: Flavour) -> None:
    """``verify`` reads caches with the msgpack that cachecontrol depends on."""
    entry = flavour.entry(HEADERS, {})
    assert diagnose(entry, lambda payload: msgpack.loads(payload, raw=False)).kind == "ok"


def test_permanent_redirect_with_empty_body_is_ok(flavour: Flavour) -> None:
    """CacheControl stores a 301/308 with an empty body whatever Content-Length announced."""
    document = _document(flavour, flavour.entry({**HEADERS, "Location": "/elsewhere"}, {}))
    redirect = _packed(flavour, {**document, "response": {**document["response"], "status": 301}})

    assert diagnose(redirect, flavour.unpack, {}, body_size=0, reader=flavour.reader).kind == "ok"


def test_stored_body_is_what_the_real_serializer_kept_inline(flavour: Flavour) -> None:
    entry = flavour.entry(HEADERS, {})

    assert stored_body(entry, flavour.unpack) == (b"" if flavour.separate_body else BODY)


@pytest.mark.parametrize("name", ["garbage", "truncated-msgpack", "old-format-2", "no-response"])
def test_no_stored_body_is_read_from_a_damaged_entry(flavour: Flavour, name: str) -> None:
    damaged = DAMAGE[name][0](flavour, flavour.entry(HEADERS, {}))

    assert stored_body(damaged, flavour.unpack) is None


def test_a_field_of_the_wrong_type_loads_but_is_corrupt_and_judging_changes_nothing(
    flavour: Flavour,
) -> None:
    document = _document(flavour, flavour.entry(HEADERS, {}))
    document["response"] = {**document["response"], "status": "200"}
    entry = _packed(flavour, document)
    decoded = flavour.unpack(entry[5:])
    before = copy.deepcopy(decoded)

    verdict = judge_document(decoded)

    assert flavour.load(entry, {}) == "response"  # pip's loader accepts it; pip then crashes
    assert verdict.kind == "corrupt" and "'status' is a str" in verdict.reason
    assert diagnose(entry, flavour.unpack, reader=flavour.reader) == verdict
    assert decoded == before  # pip builds its response from this very document afterwards
