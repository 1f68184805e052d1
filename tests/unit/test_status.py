"""gateway/status.py: the sentences an operator reads about nodes' disks."""

from __future__ import annotations

from gateway.status import _disk_problems

GiB = 2**30


def test_low_disk_and_silent_nodes_are_problems_and_healthy_ones_are_not() -> None:
    health = {
        "full": {"bytes": 90 * GiB, "disk_bytes": 100 * GiB, "disk_free": 5 * GiB},
        "roomy": {"bytes": 10 * GiB, "disk_bytes": 100 * GiB, "disk_free": 60 * GiB},
        "edge": {"bytes": 0, "disk_bytes": 100 * GiB, "disk_free": 10 * GiB},
        "silent": None,
    }
    assert _disk_problems(health) == [
        "node full has 5.0 GiB (5 %) of its disk free: add nodes or capacity",
        "node silent is alive in gossip but its API did not answer within 2 s",
    ]
