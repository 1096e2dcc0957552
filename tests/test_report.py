"""The summary, the JSON report and redaction, as pure functions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pip_cache_guard.ledger import Event, Ledger
from pip_cache_guard.report import (
    document,
    format_size,
    redact_url,
    summary,
    url_file_name,
    write_json_atomically,
)


def _event(name: str, kind: str = "corrupt", action: str = "deleted", size: int = 1000) -> Event:
    return Event(
        url=f"https://***@pkgs.example/files/{name}",
        cache_file=f"/cache/http-v2/a/b/c/d/e/{name}-hash",
        kind=kind,
        reason="metadata file is empty",
        action=action,
        bytes=size,
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:tok@host/simple/x/", "https://***@host/simple/x/"),
        ("https://__token__@host:8443/f.whl", "https://***@host:8443/f.whl"),
        ("https://host/f.whl?X-Amz-Signature=abc&v=1", "https://host/f.whl?***"),
        ("https://host/x.whl?SECRET_TOKEN_abc123", "https://host/x.whl?***"),  # no "=": a field
        ("https://host/x.whl?a=1;SECRET_TOKEN", "https://host/x.whl?***"),
        ("https://host/x.whl;jsessionid=SECRET/y", "https://host/x.whl;***/y"),
        ("https://host/f.whl", "https://host/f.whl"),
        ("https://host/f.whl#sha256=00", "https://host/f.whl"),
        ("https://u:SECRET@[::1/x.whl;SECRET?SECRET#SECRET", "https://***@[::1/x.whl;***"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


# Secrets are upper case; everything else in the generated URLs is lower case, so a secret found
# in the redacted URL can only have leaked.
secrets = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=8)
_names = st.sampled_from(["token", "sig", "x-amz-signature", "key", ""])
_query_fields = st.tuples(
    st.sampled_from(["{s}", "{n}={s}", "{s}=", "{s}==", "{n}={s}={s}"]), _names, secrets
)


@given(
    user=st.one_of(st.none(), secrets),
    password=st.one_of(st.none(), secrets),
    path_parameter=st.one_of(st.none(), secrets),
    fields=st.lists(_query_fields, max_size=4),
    separator=st.sampled_from(["&", ";"]),
    fragment=st.one_of(st.none(), secrets),
)
def test_no_credential_survives_redaction(
    user: str | None,
    password: str | None,
    path_parameter: str | None,
    fields: list[tuple[str, str, str]],
    separator: str,
    fragment: str | None,
) -> None:
    userinfo = f"{user or ''}{':' + password if password else ''}@" if user or password else ""
    path = "/files/demo-1.0-py3-none-any.whl" + (f";id={path_parameter}" if path_parameter else "")
    query = separator.join(form.format(n=name, s=secret) for form, name, secret in fields)
    url = f"https://{userinfo}index.example{path}" + (f"?{query}" if query else "")
    url += f"#{fragment}" if fragment else ""

    redacted = redact_url(url)

    for secret in (user, password, path_parameter, fragment, *(f[2] for f in fields)):
        assert not secret or secret not in redacted
    assert redacted.startswith("https://") and "/files/demo-1.0-py3-none-any.whl" in redacted


def test_url_file_name() -> None:
    assert url_file_name("https://h/files/demo-1.0-py3-none-any.whl") == "demo-1.0-py3-none-any.whl"
    assert url_file_name("https://h/simple/demo/") == "demo/"
    assert url_file_name("https://h/") == "https://h/"


def test_nothing_to_say_prints_nothing() -> None:
    assert summary([], "/cache") == ""


def test_summary_counts_kinds_actions_and_bytes() -> None:
    events = [
        _event("a.whl"),
        _event("b.whl", "stale-format", size=2500),
        _event("c.whl", "vary-mismatch", "kept"),
    ]

    text = summary(events, "/cache/http-v2")

    first, *rest = text.splitlines()
    assert first.startswith("pip-cache-guard: 2 damaged cache entries (1 corrupt, 1 stale-format)")
    assert "2 deleted (3.5 kB freed)" in first
    assert "1 valid cache entry skipped by pip for a Vary mismatch (not damaged, kept)" in first
    assert "  cache: /cache/http-v2" in rest
    assert "  - a.whl: corrupt, deleted" in rest
    assert not any("disk" in line for line in rest)  # a first incident: no alarm


def test_summary_lists_the_first_few_then_how_many_more() -> None:
    events = [_event(f"p{i}.whl") for i in range(8)]

    lines = summary(events, "/c").splitlines()

    assert "  - p4.whl: corrupt, deleted" in lines
    assert "  - p5.whl: corrupt, deleted" not in lines
    assert "  - and 3 more" in lines


def test_quiet_keeps_one_line_verbose_adds_detail() -> None:
    events = [_event(f"p{i}.whl") for i in range(8)]

    assert len(summary(events, "/c", level=-1).splitlines()) == 1
    verbose = summary(events, "/c", level=1)
    assert "  - p7.whl: corrupt, deleted" in verbose.splitlines()
    assert "why: metadata file is empty" in verbose
    assert "/cache/http-v2/a/b/c/d/e/p7.whl-hash" in verbose


def test_failed_deletion_is_said_with_what_to_do() -> None:
    text = summary([_event("a.whl", action="delete-failed")], "/c")
    assert "0 deleted (0 bytes freed), 1 could not be deleted" in text
    assert "pip cache purge" in text


def test_an_entry_another_process_deleted_is_not_said_to_be_left_in_place() -> None:
    text = summary([_event("a.whl", action="already-deleted"), _event("b.whl")], "/c")

    assert (
        "2 damaged cache entries (2 corrupt): 1 deleted (1.0 kB freed), 1 already deleted" in text
    )
    assert "left in place" not in text and "pip cache purge" not in text
    left = summary(
        [_event("a.whl", action="already-deleted"), _event("b.whl", action="kept")], "/c"
    )
    assert "left in place" in left


def test_files_fetched_again_are_said_so_and_not_as_left_in_place() -> None:
    events = [_event("a.whl", "bad-body", "refetched"), _event("b.whl")]

    first, *rest = summary(events, "/c").splitlines()

    assert "2 damaged cache entries (1 bad-body, 1 corrupt): 1 deleted (1.0 kB freed)" in first
    assert first.endswith(", 1 fetched again")
    assert "  - a.whl: bad-body, refetched" in rest
    assert any("fetched again were replaced by pip's fresh download" in line for line in rest)
    assert not any("left in place" in line for line in rest)


def test_what_became_of_the_entries_is_said_in_one_sentence() -> None:
    events = [
        _event("a.whl", "bad-body", "refetched"),
        _event("b.whl"),
        _event("c.whl", "bad-wheel", "rebuilt"),
    ]

    advice = [line for line in summary(events, "/c").splitlines() if "nothing else" in line]

    assert advice == [
        "  Deleted entries are fetched afresh; entries fetched again were replaced by pip's fresh "
        "download in this run; cached wheels built again were replaced by pip's fresh build in "
        "this run; nothing else in the cache was touched."
    ]


def test_only_fetched_again_does_not_count_deletions() -> None:
    first = summary([_event("a.whl", "bad-body", "refetched")], "/c").splitlines()[0]
    assert first == "pip-cache-guard: 1 damaged cache entry (1 bad-body): 1 fetched again"


def test_an_index_mismatch_is_not_blamed_on_the_cache() -> None:
    text = summary([_event("a.whl", "index-mismatch", "refetched")], "/c")

    first, *rest = text.splitlines()
    assert "damaged" not in first
    assert "1 file failed again as fetched afresh from the index" in first
    assert "(the cache was not the cause)" in first
    assert any("is not cache damage" in line for line in rest)
    assert not any("full disk" in line for line in rest)


def test_document_follows_schema_1() -> None:
    events = [_event("a.whl"), _event("b.whl", "vary-mismatch", "kept", 77)]

    data = document(events, "/cache/http-v2", "26.3")

    assert data["schema"] == 1
    assert data["pip_version"] == "26.3"
    assert data["cache_dir"] == "/cache/http-v2"
    assert data["deleted"] == 1
    assert data["bytes_freed"] == 1000
    assert set(data["events"][0]) == {
        "url", "cache_dir", "cache_file", "kind", "reason", "action", "bytes",
    }  # fmt: skip
    assert isinstance(data["tool_version"], str)


def test_each_event_names_the_cache_it_is_in() -> None:
    """Issue 15 item 7: a child pip's cache, or ``wheels/``, is not this pip's HTTP cache."""
    child = _event("a.whl")._replace(cache_dir="/default/http-v2")
    wheel = _event("b.whl", "bad-wheel")._replace(cache_dir="/mine/wheels")
    own = _event("c.whl")._replace(cache_dir="/mine/http-v2")
    events = [child, wheel, own, _event("d.whl")._replace(cache_dir="/default/http-v2")]

    lines = summary(events, "/mine/http-v2").splitlines()
    data = document(events, "/mine/http-v2", "26.3")

    assert lines[1:6] == [
        "  cache: /default/http-v2",
        "  - a.whl: corrupt, deleted",
        "  - d.whl: corrupt, deleted",
        "  cache: /mine/wheels",
        "  - b.whl: bad-wheel, deleted",
    ], lines
    assert lines[6:8] == ["  cache: /mine/http-v2", "  - c.whl: corrupt, deleted"], lines
    assert data["cache_dir"] == "/mine/http-v2"  # the cache this pip used, as before
    assert [event["cache_dir"] for event in data["events"]] == [
        "/default/http-v2", "/mine/wheels", "/mine/http-v2", "/default/http-v2",
    ]  # fmt: skip


def test_only_the_first_entries_are_listed_under_their_caches() -> None:
    events = [_event(f"{n}.whl")._replace(cache_dir=f"/c{n % 2}") for n in range(8)]

    lines = summary(events, None).splitlines()

    assert lines[1:9] == [
        "  cache: /c0", "  - 0.whl: corrupt, deleted", "  - 2.whl: corrupt, deleted",
        "  - 4.whl: corrupt, deleted", "  - 6.whl: corrupt, deleted",
        "  cache: /c1", "  - 1.whl: corrupt, deleted", "  - and 3 more",
    ], lines  # fmt: skip


def test_report_is_written_whole(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")

    write_json_atomically(str(target), document([], None, None))

    assert json.loads(target.read_text())["events"] == []
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_ledger_keeps_one_event_per_entry() -> None:
    ledger = Ledger()
    assert ledger.record("/c", "https://h/a", _event("a.whl"))
    assert not ledger.record("/c", "https://h/a", _event("a.whl", "vary-mismatch", "kept"))
    assert ledger.record("/other", "https://h/a", _event("a.whl"))
    assert [event.kind for event in ledger.events()] == ["corrupt", "corrupt"]


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 bytes"),
        (999, "999 bytes"),
        (1000, "1.0 kB"),
        (158_300, "158.3 kB"),
        (12_345_678_901, "12.3 GB"),
    ],
)
def test_sizes_read_like_pips(size: int, text: str) -> None:
    assert format_size(size) == text


def test_rebuilt_entries_are_said_apart_from_deleted_ones() -> None:
    events = [
        _event("a.whl", "bad-wheel", "rebuilt", 3000),
        _event("b.whl", "corrupt", "deleted", 1000),
    ]

    text = summary(events, "/cache")
    data = document(events, "/cache", "26.3")

    assert text.splitlines()[0] == (
        "pip-cache-guard: 2 damaged cache entries (1 bad-wheel, 1 corrupt): "
        "1 deleted (1.0 kB freed), 1 built again"
    )
    assert "  - a.whl: bad-wheel, rebuilt" in text.splitlines()
    assert (data["deleted"], data["bytes_freed"]) == (1, 1000)


def test_a_first_incident_names_no_disk_and_no_advice_is_repeated() -> None:
    """The full-disk advice comes from the history (``extra_advice``), once damage came back;
    a summary of damage alone does not alarm."""
    events = [_event("a.whl"), _event("b.whl", "bad-body", "refetched")]
    recurring = "This cache was damaged 3 times in the past 7 days: a full or failing disk."

    first_time = summary(events, "/c").splitlines()
    again = summary(events, "/c", extra_advice=[recurring]).splitlines()

    assert not any("disk" in line for line in first_time), first_time
    assert [line for line in again if "disk" in line] == [f"  {recurring}"]
    assert len(again) == len(set(again))


def test_damage_found_by_a_digest_says_where_the_digest_came_from() -> None:
    source = "the server's X-Checksum-Sha256 header"
    found = _event("a.whl", "bad-body", "refetched")._replace(digest=source)
    events = [found, _event("b.whl", "bad-body", "refetched")]

    lines = summary(events, "/cache/http-v2").splitlines()
    data = document(events, "/cache/http-v2", "26.3")

    assert f"  - a.whl: bad-body, refetched (checked against {source})" in lines, lines
    assert "  - b.whl: bad-body, refetched" in lines, lines
    assert data["events"][0]["digest"] == source
    assert "digest" not in data["events"][1]  # absent, not null: only where a digest found it
