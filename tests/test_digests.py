"""What an entry says its body must hash to: the guard's record and the digests servers send."""

from __future__ import annotations

import hashlib

import msgpack
import pytest

from pip_cache_guard import digests

from support.index import DIGEST_HEADERS

BODY = b"the bytes of a wheel, as the server sent them" * 100
ORIGINAL_HEX = {name: hashlib.new(name, BODY).hexdigest() for name in ("sha256", "sha1", "md5")}


def document(headers: dict[str, str], status: int = 200, **extra: object) -> dict[str, object]:
    response = {"body": b"", "headers": headers, "status": status, "version": 11, "reason": "OK"}
    return {"response": response, "vary": {}, **extra}


@pytest.mark.parametrize("header", sorted(DIGEST_HEADERS))
def test_every_digest_header_a_server_sends_is_read_as_the_digest_of_the_body(header: str) -> None:
    """The loopback index sends each header as the servers that use it do (tests/support)."""
    expected = digests.expected_digest(document({header: DIGEST_HEADERS[header](BODY)}))
    assert expected is not None
    assert expected.matches(hashlib.new(expected.algorithm, BODY).hexdigest())
    assert header.lower() in expected.source.lower()


def test_the_strongest_digest_is_used_and_the_guards_record_comes_first() -> None:
    headers = {
        "X-Checksum-Md5": ORIGINAL_HEX["md5"],
        "X-Checksum-Sha1": ORIGINAL_HEX["sha1"],
        "X-Checksum-Sha256": ORIGINAL_HEX["sha256"],
    }
    chosen = digests.expected_digest(document(headers))
    assert chosen is not None and chosen.algorithm == "sha256"
    record = digests.record_of(b"other bytes")
    chosen = digests.expected_digest(document(headers, **{digests.RECORD_KEY: record}))
    assert chosen is not None and chosen.hexdigest == record["sha256"]
    assert "recorded" in chosen.source


@pytest.mark.parametrize(
    "headers",
    [
        {"ETag": f'"{ORIGINAL_HEX["md5"]}"'},  # S3's: an MD5 only for some uploads
        {"ETag": ORIGINAL_HEX["sha1"]},  # Artifactory's, unquoted: not self-describing
        {"ETag": '"5f2a1c-3e8"'},  # nginx's: a date and a size
        {"X-Checksum-Sha256": "not hex at all"},
        {"X-Checksum-Sha256": ORIGINAL_HEX["sha1"]},  # the wrong length for its name
        {"Repr-Digest": "sha-256=:not base64!:"},
        {"Repr-Digest": "md5=:" + "A" * 22 + "==:"},  # RFC 9530 deprecates md5: not taken
        {"Digest": "SHA-256=" + ORIGINAL_HEX["sha256"]},  # hex where base64 belongs
        {"X-Checksum-Sha256": ORIGINAL_HEX["sha256"], "Content-Encoding": "gzip"},
    ],
)
def test_what_proves_nothing_about_the_stored_bytes_is_no_digest(headers: dict[str, str]) -> None:
    assert digests.expected_digest(document(headers)) is None


def test_a_nexus_2_etag_names_its_algorithm_and_is_taken() -> None:
    etag = '"{SHA1{' + ORIGINAL_HEX["sha1"] + '}}"'
    expected = digests.expected_digest(document({"ETag": etag}))
    assert expected is not None and expected.algorithm == "sha1"
    assert expected.matches(ORIGINAL_HEX["sha1"].upper())


def test_only_a_whole_200_is_judged_by_its_headers() -> None:
    headers = {"X-Checksum-Sha256": ORIGINAL_HEX["sha256"]}
    assert digests.expected_digest(document(headers, status=301)) is None


def test_the_record_is_one_more_pair_and_the_rest_is_byte_for_byte_the_same() -> None:
    original = document({"Content-Type": "application/zip"})
    original["response"]["body"] = BODY  # type: ignore[index]
    blob = b"cc=4," + msgpack.dumps(original, use_bin_type=True)
    record = digests.record_of(BODY)

    added = digests.with_record(blob, record, lambda v: msgpack.dumps(v, use_bin_type=True))

    decoded = msgpack.loads(added[5:], raw=False)
    assert decoded == {**original, digests.RECORD_KEY: record}
    assert digests.recorded(decoded) == {"sha256": ORIGINAL_HEX["sha256"], "size": len(BODY)}
    assert digests.with_record(added, record, msgpack.dumps) == added  # never twice
    assert digests.with_record(b"cc=2,whatever", record, msgpack.dumps) == b"cc=2,whatever"


@pytest.mark.parametrize(
    "record",
    [None, "a string", {"sha256": "00" * 31, "size": 1}, {"sha256": "00" * 32}, {"size": 3}],
)
def test_a_malformed_record_is_no_record(record: object) -> None:
    assert digests.recorded(document({}, **{digests.RECORD_KEY: record})) is None
