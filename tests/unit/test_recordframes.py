"""cluster.recordframes: the framed /meta/get answer."""

from __future__ import annotations

import pytest

from cluster import recordframes


def test_records_come_back_as_sent_absent_ones_as_none() -> None:
    raws = [b'{"hlc":[1,0,"g"],"k":"\xc3\xa9"}', None, b"", b"{}" * 40_000]
    assert recordframes.decode(recordframes.encode(raws), len(raws)) == raws
    assert recordframes.decode(recordframes.encode([]), 0) == []


@pytest.mark.parametrize("cut", [1, 3, 4, 10])
def test_a_truncated_answer_is_refused(cut: int) -> None:
    body = recordframes.encode([b'{"a":1}', None])
    with pytest.raises(ValueError):
        recordframes.decode(body[:-cut], 2)


def test_more_or_fewer_records_than_asked_is_refused() -> None:
    body = recordframes.encode([b'{"a":1}', None])
    with pytest.raises(ValueError):
        recordframes.decode(body, 1)
    with pytest.raises(ValueError):
        recordframes.decode(body, 3)
