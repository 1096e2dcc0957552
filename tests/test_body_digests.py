"""A watched body, as urllib3 reads it: the file's own answers, and the verdict at the last byte.

End to end with real pips in ``test_digests_e2e.py``; here the one thing a pip run does not show:
``DigestingBody`` answers urllib3's "is it closed?" itself (it asks twice a read) and must answer
exactly as the file it wraps.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from types import SimpleNamespace
from typing import IO

import pytest
from pip._internal.network.utils import response_chunks
from pip._vendor.urllib3 import HTTPResponse
from pip._vendor.urllib3.util.response import is_fp_closed

from pip_cache_guard import digests
from pip_cache_guard.hook.body_digests import DigestingBody


@pytest.mark.parametrize("kind", ["file", "memory"])
def test_a_watched_body_is_closed_exactly_when_its_file_is(tmp_path: Path, kind: str) -> None:
    body = os.urandom(100_000)
    path = tmp_path / "body"
    path.write_bytes(body)

    def opened() -> IO[bytes]:
        return path.open("rb") if kind == "file" else io.BytesIO(body)

    expected = digests.Expected("sha256", hashlib.sha256(body).hexdigest(), "a test")
    bare, watched = opened(), DigestingBody(opened(), expected, len(body))
    responses = [
        HTTPResponse(body=fp, preload_content=False, decode_content=False) for fp in (bare, watched)
    ]
    assert [is_fp_closed(fp) for fp in (bare, watched)] == [False, False]
    assert [response.closed for response in responses] == [False, False]

    read = [b"".join(response_chunks(SimpleNamespace(raw=r))) for r in responses]

    assert read == [body, body]
    assert watched._self_verdict is True
    assert [is_fp_closed(fp) for fp in (bare, watched)] == [True, True]  # closed at the end
    assert [response.closed for response in responses] == [True, True]
