"""cluster.recordframes: the framed /meta/get answer."""

from __future__ import annotations

import pytest

from cluster import recordframes


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
