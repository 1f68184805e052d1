"""Storage policy: how a bucket's blocks are kept (erasure coding k+m or n replicas).

Invariants (checked on construction, so every StoragePolicy in the system is valid):

* ``ec``: 1 <= k <= 16 and 0 <= m <= 8. Every such k+m is supported by the codec
  (pyeclib ``isa_l_rs_cauchy``, an MDS code: any k of the k+m shards decode; tested by sampling).
* ``replica``: k == 1 and m == replicas - 1 with 1 <= replicas <= 8; every shard is the
  whole block.
* A block is readable from any ``read_need`` (= k) of its ``width`` (= k+m) shards; a write
  is acknowledged once ``write_quorum`` shards are stored: k+1 when m > 0 (so one more
  failure still leaves k), else all k.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["StoragePolicy", "parse_policy", "default_policy", "MAX_K", "MAX_M", "MAX_REPLICAS"]

MAX_K = 16
MAX_M = 8
MAX_REPLICAS = 8

_EC_RE = re.compile(r"(?:ec:)?([0-9]+)\+([0-9]+)")
_REPLICA_RE = re.compile(r"replica:([0-9]+)|([0-9]+)x")


@dataclass(frozen=True)
class StoragePolicy:
    """A validated storage policy. ``zones`` is the minimum number of distinct zones a block's
    shards must span; ``encrypt`` asks for encryption at rest."""

    kind: Literal["ec", "replica"]
    k: int
    m: int
    zones: int = 1
    encrypt: bool = False

    def __post_init__(self) -> None:
        for name in ("k", "m", "zones"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"policy {name} must be an int, got {value!r}")
        if not isinstance(self.encrypt, bool):
            raise ValueError(f"policy encrypt must be a bool, got {self.encrypt!r}")
        if self.kind == "ec":
            if not 1 <= self.k <= MAX_K:
                raise ValueError(f"ec policy needs 1 <= k <= {MAX_K}, got k={self.k}")
            if not 0 <= self.m <= MAX_M:
                raise ValueError(f"ec policy needs 0 <= m <= {MAX_M}, got m={self.m}")
        elif self.kind == "replica":
            if self.k != 1:
                raise ValueError(f"replica policy has k == 1, got k={self.k}")
            if not 1 <= self.m + 1 <= MAX_REPLICAS:
                raise ValueError(
                    f"replica policy needs 1..{MAX_REPLICAS} replicas, got {self.m + 1}"
                )
        else:
            raise ValueError(f"policy kind must be 'ec' or 'replica', got {self.kind!r}")
        if self.zones < 1:
            raise ValueError(f"policy zones must be >= 1, got {self.zones}")

    @property
    def width(self) -> int:
        """Shards per block (k + m)."""
        return self.k + self.m

    @property
    def write_quorum(self) -> int:
        """Shards that must be stored before a block write counts: k + 1 when m > 0, else k."""
        return self.k + 1 if self.m > 0 else self.k

    @property
    def read_need(self) -> int:
        """Shards needed to read a block back (k)."""
        return self.k

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; ``from_dict(p.to_dict()) == p``."""
        return {
            "kind": self.kind,
            "k": self.k,
            "m": self.m,
            "zones": self.zones,
            "encrypt": self.encrypt,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StoragePolicy:
        """Inverse of ``to_dict``; ``zones`` and ``encrypt`` may be absent (defaults).
        Raises ValueError on a missing or invalid field."""
        try:
            return cls(
                kind=d["kind"],
                k=d["k"],
                m=d["m"],
                zones=d.get("zones", 1),
                encrypt=d.get("encrypt", False),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"invalid policy record {d!r}: {exc}") from exc

    def __str__(self) -> str:
        if self.kind == "replica":
            return f"replica:{self.m + 1}"
        return f"ec:{self.k}+{self.m}"


def parse_policy(text: str) -> StoragePolicy:
    """Parse ``"4+2"``, ``"ec:4+2"``, ``"replica:3"`` or ``"3x"`` (case and surrounding
    spaces ignored). Raises ValueError on other text or out-of-range numbers."""
    t = text.strip().lower()
    if match := _EC_RE.fullmatch(t):
        return StoragePolicy("ec", int(match[1]), int(match[2]))
    if match := _REPLICA_RE.fullmatch(t):
        replicas = int(match[1] or match[2])
        if not 1 <= replicas <= MAX_REPLICAS:
            raise ValueError(f"replica policy needs 1..{MAX_REPLICAS} replicas, got {replicas}")
        return StoragePolicy("replica", 1, replicas - 1)
    raise ValueError(f"unknown storage policy {text!r} (expected e.g. 4+2, ec:4+2, replica:3, 3x)")


def default_policy(live_nodes: int) -> StoragePolicy:
    """Cluster default by size: up to 2 nodes ec 1+0, 3-5 nodes ec 2+1, 6+ nodes ec 4+2.
    0 live nodes gives 1+0 too (nothing can be written anyway); negative raises ValueError."""
    if live_nodes < 0:
        raise ValueError(f"live node count must be >= 0, got {live_nodes}")
    if live_nodes >= 6:
        return StoragePolicy("ec", 4, 2)
    if live_nodes >= 3:
        return StoragePolicy("ec", 2, 1)
    return StoragePolicy("ec", 1, 0)
