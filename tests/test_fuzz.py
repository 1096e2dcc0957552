"""Fuzzing the classifier against the real loaders (``benchmarks/fuzz_diagnose.py`` runs 100,000).

Generated damage of a valid entry (bit flips, truncations, insertions, deletions, overwrites,
random ``cc=`` prefixes, well-formed msgpack of every wrong shape and type) goes to ``diagnose`` and
through pip's real, unpatched CacheControl (and the standalone one): the classifier never raises,
never calls ``ok`` what the loader rejects or what makes pip fail, and never calls damage what pip
can use (``support.loaders.violation`` says exactly what counts). The other direction is checked
on what real writers produce: every entry CacheControl writes is ``ok`` or a Vary mismatch, also
without the response fields a future CacheControl may stop writing.
"""

from __future__ import annotations

import random
from email.utils import parsedate_tz

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pip_cache_guard.diagnose import diagnose

from support.loaders import BODY, DAMAGES, REQUEST_HEADERS, Flavour, damage, violation

SERIALIZE_MODULES = ["pip._vendor.cachecontrol.serialize", "cachecontrol.serialize"]
# The flavour fixture is module-scoped and never changed by a test; the loaders take ~0.1 ms.
FUZZ = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture]}


@pytest.fixture(params=SERIALIZE_MODULES, scope="module")
def flavour(request: pytest.FixtureRequest) -> Flavour:
    return Flavour(request.param)


def _body_size(flavour: Flavour) -> int | None:
    """What the hook passes: the size of the body file when the entry has one."""
    return len(BODY) if flavour.separate_body else None


@settings(max_examples=400, **FUZZ)
@given(rng=st.randoms(use_true_random=False), name=st.sampled_from(sorted(DAMAGES)))
def test_generated_damage_is_judged_as_pip_would(
    flavour: Flavour, rng: random.Random, name: str
) -> None:
    damaged = DAMAGES[name](rng, flavour, flavour.entry())

    verdict = diagnose(
        damaged,
        flavour.unpack,
        REQUEST_HEADERS,
        body_size=_body_size(flavour),
        reader=flavour.reader,
    )

    assert violation(verdict, flavour.outcome(damaged)) is None, (damaged, verdict)


@settings(max_examples=150, **FUZZ)
@given(rng=st.randoms(use_true_random=False))
def test_stacked_damage_is_judged_as_pip_would(flavour: Flavour, rng: random.Random) -> None:
    name, damaged = damage(rng, flavour, flavour.entry())

    verdict = diagnose(
        damaged,
        flavour.unpack,
        REQUEST_HEADERS,
        body_size=_body_size(flavour),
        reader=flavour.reader,
    )

    assert violation(verdict, flavour.outcome(damaged)) is None, (name, damaged, verdict)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Date": "Fri, 27 Nov 2026 :8:00:00 GMT"}, "Date header"),
        ({"Date": "Fri, 27 Nov 99999 08:00:00 GMT"}, "Date header"),
        ({"date": "garbage"}, "Date header"),
        ({"Content-Length": "1200, 1201"}, "differing values"),
    ],
)
def test_headers_that_make_cachecontrol_fail_are_corrupt(
    flavour: Flavour, headers: dict[str, str], expected: str
) -> None:
    """Found by the fuzzer: text headers CacheControl or urllib3 raise on at every load.

    CacheControl 0.15 reads a Date that ``parsedate_tz`` cannot parse as a miss and keeps the
    entry for revalidation: for that reader it is a valid entry; a parsed date out of range still
    raises."""
    damaged = _with_headers(flavour, headers)
    date = headers.get("Date", headers.get("date"))
    kept = flavour.reader.keeps_unparsable_date and date and parsedate_tz(date) is None

    verdict = diagnose(damaged, flavour.unpack, REQUEST_HEADERS, reader=flavour.reader)

    if kept:
        assert verdict.kind == "ok", verdict
        assert flavour.outcome(damaged) == "skipped"
    else:
        assert verdict.kind == "corrupt" and expected in verdict.reason
        assert flavour.outcome(damaged) in ("raises", "chokes")


@pytest.mark.parametrize(
    "date", ["Fri, 27 Nov 2026 :8:00:00 GMT", "Fri, 27 Nov 99999 08:00:00 GMT", "garbage"]
)
def test_permanent_redirect_with_an_unreadable_date_is_judged_as_its_reader_reads_it(
    flavour: Flavour, date: str
) -> None:
    """CacheControl 0.12.11-0.14 return a cached 301/308 before reading Date; 0.15 reads Date of
    every entry, and raises on one it parses out of range."""
    document = flavour.unpack(_with_headers(flavour, {"Date": date, "Location": "/x"})[5:])
    document["response"]["status"] = 301
    redirect = b"cc=4," + flavour.pack(document)

    verdict = diagnose(redirect, flavour.unpack, REQUEST_HEADERS, reader=flavour.reader)

    assert violation(verdict, flavour.outcome(redirect)) is None, verdict
    fails = flavour.reader.keeps_unparsable_date and parsedate_tz(date) is not None
    assert verdict.kind == ("corrupt" if fails else "ok"), verdict


def _with_headers(flavour: Flavour, headers: dict[str, str]) -> bytes:
    """A valid entry whose stored headers are changed to ``headers`` (a lower-case ``date``
    replaces ``Date``)."""
    document = flavour.unpack(flavour.entry()[5:])
    document["response"]["headers"] = {**document["response"]["headers"], **headers}
    if "date" in headers:
        del document["response"]["headers"]["Date"]
    return b"cc=4," + flavour.pack(document)


def test_bodiless_status_with_a_body_file_is_body_mismatch(flavour: Flavour) -> None:
    """Found by the fuzzer: urllib3 2 refuses to read a body a 204/304/1xx cannot have."""
    document = flavour.unpack(flavour.entry()[5:])
    document["response"]["status"] = 204
    damaged = b"cc=4," + flavour.pack(document)

    assert (
        diagnose(damaged, flavour.unpack, REQUEST_HEADERS, body_size=0, reader=flavour.reader).kind
        == "ok"
    )
    verdict = diagnose(
        damaged, flavour.unpack, REQUEST_HEADERS, body_size=len(BODY), reader=flavour.reader
    )
    assert verdict.kind == "body-mismatch"


header_names = st.sampled_from(
    ["ETag", "X-Served-By", "Last-Modified", "Content-Type", "Expires", "Cache-Control"]
)
header_values = st.from_regex(r"([!-~][ -~]{0,20})?", fullmatch=True).map(str.rstrip)
optional_fields = st.sets(st.sampled_from(["version", "reason", "decode_content", "strict"]))


@settings(max_examples=150, **FUZZ)
@given(
    headers=st.dictionaries(header_names, header_values, max_size=4),
    status=st.sampled_from([200, 203, 300, 301, 308]),
    request_value=st.sampled_from(["identity", "gzip", ""]),
    dropped=optional_fields,
)
def test_what_a_writer_stores_is_never_damage(
    flavour: Flavour, headers: dict[str, str], status: int, request_value: str, dropped: set[str]
) -> None:
    """Whatever CacheControl writes, also without the fields urllib3 has defaults for."""
    entry = flavour.entry({**headers, "Vary": "Accept-Encoding"}, {"Accept-Encoding": "identity"})
    document = flavour.unpack(entry[5:])
    document["response"]["status"] = status
    for field in dropped:
        document["response"].pop(field, None)
    stored = b"cc=4," + flavour.pack(document)
    request = {"Accept-Encoding": request_value}

    verdict = diagnose(
        stored, flavour.unpack, request, body_size=_body_size(flavour), reader=flavour.reader
    )

    assert not verdict.is_damage, verdict
    assert violation(verdict, flavour.outcome(stored, request)) is None
