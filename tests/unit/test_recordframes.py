"""cluster.recordframes: the framed /meta/get answer; how scans cut records."""

from __future__ import annotations

import orjson
import pytest

from cluster import recordframes
from cluster.nodeapp import without_inline
from cluster.store import _encode as store_encode


def test_records_come_back_as_sent_absent_ones_as_none() -> None:
    raws = [b'{"hlc":[1,0,"g"],"k":"\xc3\xa9"}', None, b"", b"{}" * 40_000]
    assert recordframes.decode(recordframes.encode(raws), len(raws)) == (raws, [0] * 4)
    assert recordframes.decode(recordframes.encode([]), 0) == ([], [])


def test_purge_marks_travel_with_absent_records_only() -> None:
    raws = [None, b'{"a":1}', None, None]
    body = recordframes.encode(raws, [1_700_000_000_123, 99, 0, 5])
    assert recordframes.decode(body, 4) == (raws, [1_700_000_000_123, 0, 0, 5])
    # Without marks asked for, the answer is the old form, byte for byte.
    assert recordframes.encode(raws) == recordframes.encode(raws, [0, 0, 0, 0])


@pytest.mark.parametrize("cut", [1, 3, 4, 10])
def test_a_truncated_answer_is_refused(cut: int) -> None:
    body = recordframes.encode([b'{"a":1}', None])
    with pytest.raises(ValueError):
        recordframes.decode(body[:-cut], 2)


@pytest.mark.parametrize("cut", [1, 7, 8])
def test_a_truncated_mark_is_refused(cut: int) -> None:
    body = recordframes.encode([None], [12345])
    with pytest.raises(ValueError):
        recordframes.decode(body[:-cut], 1)


def test_an_unknown_negative_length_is_refused() -> None:
    with pytest.raises(ValueError):
        recordframes.decode(b"\xff\xff\xff\xfd", 1)


def test_more_or_fewer_records_than_asked_is_refused() -> None:
    body = recordframes.encode([b'{"a":1}', None])
    with pytest.raises(ValueError):
        recordframes.decode(body, 1)
    with pytest.raises(ValueError):
        recordframes.decode(body, 3)


def test_a_scan_cuts_only_a_top_level_inline_body_that_ends_the_record() -> None:
    body = "QUJD" * 1000  # base64, as the gateway stores small objects
    record = {"hlc": [1, 0, "g"], "inline": body, "size": 3, "etag": "e\"x"}
    stored = store_encode(record)
    assert stored.endswith(b'"}') and orjson.loads(stored) == record  # moved last
    cut = without_inline(stored)
    assert cut is not None and orjson.loads(cut) == {k: v for k, v in record.items()
                                                     if k != "inline"}
    not_last = orjson.dumps(record)  # as an older node stored it: inline mid-record
    nested = orjson.dumps({"hlc": [1, 0, "g"], "user_meta": {"inline": body}})
    in_string = orjson.dumps({"hlc": [1, 0, "g"], "x": ',"inline":"' + body})
    large_rest = store_encode({**record, "user_meta": {"m": "v" * 3000}})
    for raw in (not_last, nested, in_string, large_rest):
        assert without_inline(raw) is None, raw[:60]
    assert store_encode({"hlc": [1, 0, "g"], "inline": None, "a": 1}) == orjson.dumps(
        {"hlc": [1, 0, "g"], "inline": None, "a": 1})  # no body: left as it was
