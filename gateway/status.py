"""Cluster health for operators: members, zones, capacity, and what is wrong, in words.

Served by the admin API (``GET /_shoal/admin/status``) and printed by ``shoal status``.
The ``problems`` list is empty when the cluster is healthy; each entry is a sentence an
operator can act on (a failed node, a zone without live nodes, a bucket whose policy the
live nodes can no longer keep, metadata that cannot be read).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.errors import S3Error
from placement.policy import StoragePolicy
from placement.spread import feasible

if TYPE_CHECKING:
    from gateway.catalog import Catalog


async def cluster_status(catalog: Catalog) -> dict[str, Any]:
    backend = catalog.backend
    nodes = backend.node_members()
    problems: list[str] = []
    zones: dict[str, dict[str, int]] = {}
    for m in nodes:
        counts = zones.setdefault(m.zone or "default", {"alive": 0, "down": 0})
        counts["alive" if m.status == "alive" else "down"] += 1
        if m.status in ("failed", "leaving"):
            problems.append(f"node {m.name} (zone {m.zone}) is {m.status}: its shards are "
                            f"read from parity until it returns")
    for zone, counts in sorted(zones.items()):
        if counts["alive"] == 0 and counts["down"]:
            problems.append(f"zone {zone} has no live node")
    alive = [m for m in nodes if m.status == "alive"]
    if not alive:
        problems.append("no storage node is alive: nothing can be read or written")
    writable = backend.writable_nodes()
    buckets: list[dict[str, Any]] = []
    try:
        for b in await catalog.buckets():
            policy = StoragePolicy.from_dict(b.policy)
            issue = feasible(policy, writable)
            buckets.append({"name": b.name, "policy": str(policy), "zones": policy.zones,
                            "encrypt": policy.encrypt, "writable": issue is None})
            if issue:
                problems.append(f"bucket {b.name} cannot take writes now: {issue}")
    except S3Error as err:
        problems.append(f"bucket metadata cannot be read: {err.message}")
    return {
        "healthy": not problems,
        "problems": problems,
        "nodes": [{"name": m.name, "status": m.status, "zone": m.zone, "api": m.api,
                   "capacity": m.capacity, "draining": m.draining,
                   "rotten_shards": m.rot}
                  for m in sorted(nodes, key=lambda m: m.name)],
        "zones": dict(sorted(zones.items())),
        "capacity": {"alive_bytes": sum(m.capacity for m in alive),
                     "total_bytes": sum(m.capacity for m in nodes)},
        "default_policy": str(backend.default_policy()),
        "buckets": buckets,
    }
