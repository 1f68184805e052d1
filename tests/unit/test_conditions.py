"""Preconditions as pure functions: RFC 7232 order, ETag forms, dates, write conditions."""

from __future__ import annotations

import pytest

from gateway.conditions import (
    WriteCondition,
    check_copy_source,
    check_read,
    etag_matches,
    parse_http_date,
    range_applies,
    write_condition,
)
from gateway.errors import S3Error

ETAG = "0123456789abcdef0123456789abcdef"
MODIFIED = 1_700_000_000.4  # Tue, 14 Nov 2023 22:13:20 GMT
AT = "Tue, 14 Nov 2023 22:13:20 GMT"
BEFORE = "Tue, 14 Nov 2023 22:13:19 GMT"
AFTER = "Tue, 14 Nov 2023 22:13:21 GMT"


def code(fn, *args) -> str | None:  # noqa: ANN001
    try:
        fn(*args)
    except S3Error as err:
        return f"{err.status} {err.fields.get('Condition', err.code)}"
    return None


def test_etag_forms():
    for header in (f'"{ETAG}"', ETAG, f'W/"{ETAG}"', f'"x", "{ETAG}"', "*", f' "{ETAG}" '):
        assert etag_matches(header, f'"{ETAG}"'), header
    assert not etag_matches('"x"', ETAG)


def test_dates():
    assert parse_http_date(AT) == 1_700_000_000
    assert parse_http_date("Tuesday, 14-Nov-23 22:13:20 GMT") == 1_700_000_000
    assert parse_http_date("Tue Nov 14 22:13:20 2023") == 1_700_000_000
    assert parse_http_date("not a date") is None and parse_http_date(None) is None


@pytest.mark.parametrize("headers, outcome", [
    ({}, False),
    ({"if-match": ETAG}, False),
    ({"if-match": '"x"'}, "412 If-Match"),
    ({"if-match": ETAG, "if-unmodified-since": BEFORE}, False),  # If-Match true wins
    ({"if-unmodified-since": BEFORE}, "412 If-Unmodified-Since"),
    ({"if-unmodified-since": AT}, False),
    ({"if-none-match": ETAG}, True),
    ({"if-none-match": '"x"', "if-modified-since": AFTER}, False),  # date not looked at
    ({"if-none-match": ETAG, "if-modified-since": BEFORE}, True),
    ({"if-modified-since": AT}, True),
    ({"if-modified-since": BEFORE}, False),
    ({"if-modified-since": "garbage"}, False),
    ({"if-match": '"x"', "if-none-match": ETAG}, "412 If-Match"),  # 412 before 304
])
def test_read_preconditions(headers, outcome):
    if isinstance(outcome, str):
        assert code(check_read, headers, ETAG, MODIFIED) == outcome
    else:
        assert check_read(headers, ETAG, MODIFIED) is outcome


def test_copy_source_failures_are_412_never_304():
    assert code(check_copy_source, {"x-amz-copy-source-if-none-match": ETAG}, ETAG,
                MODIFIED) == "412 x-amz-copy-source-if-none-match"
    assert code(check_copy_source, {"x-amz-copy-source-if-modified-since": AFTER}, ETAG,
                MODIFIED) == "412 x-amz-copy-source-if-modified-since"
    assert code(check_copy_source, {"x-amz-copy-source-if-match": ETAG,
                                    "x-amz-copy-source-if-unmodified-since": BEFORE},
                ETAG, MODIFIED) is None


def test_if_range():
    assert range_applies({}, ETAG, MODIFIED)
    assert range_applies({"if-range": f'"{ETAG}"'}, ETAG, MODIFIED)
    assert not range_applies({"if-range": f'W/"{ETAG}"'}, ETAG, MODIFIED)  # strong only
    assert range_applies({"if-range": AT}, ETAG, MODIFIED)
    assert not range_applies({"if-range": BEFORE}, ETAG, MODIFIED)


def test_write_conditions():
    assert write_condition({}) is None
    assert write_condition({"if-none-match": "*"}) == WriteCondition(create_only=True)
    for bad in ({"if-none-match": ETAG}, {"if-none-match": "*", "if-match": ETAG}):
        with pytest.raises(S3Error) as err:
            write_condition(bad)
        assert err.value.status == 501
    create, swap = WriteCondition(create_only=True), WriteCondition(match=f'"{ETAG}"')
    create.check(None)
    swap.check(ETAG)
    assert code(create.check, ETAG) == "412 If-None-Match"
    assert code(swap.check, "other") == "412 If-Match"
    assert code(swap.check, None) == "404 NoSuchKey"
    # after the body: the state changed under us → 409
    assert code(lambda: create.check(ETAG, second=True)) == "409 ConditionalRequestConflict"
    assert code(lambda: swap.check(None, second=True)) == "409 ConditionalRequestConflict"
