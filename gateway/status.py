"""Cluster health for operators: members, zones, capacity, and what is wrong, in words.

Served by the admin API (``GET /_shoal/admin/status``) and printed by ``shoal status``.
The ``problems`` list is empty when the cluster is healthy; each entry is a sentence an
operator can act on (a failed node, a zone without live nodes, a bucket whose policy the
live nodes can no longer keep, metadata that cannot be read).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from cluster.membership import Member
from cluster.nodeclient import NodeUnavailable
from gateway.errors import S3Error
from placement.policy import StoragePolicy
from placement.spread import feasible

if TYPE_CHECKING:
    from gateway.backend import Backend
    from gateway.catalog import Catalog

HEALTH_TIMEOUT = 2.0  # seconds a live node has to report its disk
LOW_DISK = 0.10  # less free than this share of a node's disk is a problem


async def _health(backend: Backend, alive: list[Member]) -> dict[str, dict | None]:
    """name -> the /health answer of each live node (None: it did not answer in time)."""

    async def one(m: Member) -> tuple[str, dict | None]:
        try:
            return m.name, await asyncio.wait_for(backend.client.health(m.api), HEALTH_TIMEOUT)
        except (NodeUnavailable, TimeoutError, ValueError):  # NodeRejected is a NodeUnavailable
            return m.name, None

    return dict(await asyncio.gather(*(one(m) for m in alive if m.api)))


def _disk_problems(health: dict[str, dict | None]) -> list[str]:
    problems = []
    for name, h in sorted(health.items()):
        if h is None:
            problems.append(f"node {name} is alive in gossip but its API did not answer "
                            f"within {HEALTH_TIMEOUT:g} s")
        elif h["disk_free"] < LOW_DISK * h["disk_bytes"]:
            problems.append(f"node {name} has {h['disk_free'] / 2**30:,.1f} GiB "
                            f"({100 * h['disk_free'] / h['disk_bytes']:.0f} %) of its disk "
                            f"free: add nodes or capacity")
    return problems


def _disk(h: dict | None) -> dict[str, int | None]:
    if h is None:
        return {"used_bytes": None, "disk_bytes": None, "disk_free": None}
    return {"used_bytes": h["bytes"], "disk_bytes": h["disk_bytes"], "disk_free": h["disk_free"]}


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
    health = await _health(backend, alive)
    problems += _disk_problems(health)
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
                   "rotten_shards": m.rot, **_disk(health.get(m.name))}
                  for m in sorted(nodes, key=lambda m: m.name)],
        "zones": dict(sorted(zones.items())),
        "capacity": {"alive_bytes": sum(m.capacity for m in alive),
                     "total_bytes": sum(m.capacity for m in nodes),
                     "used_bytes": sum(h["bytes"] for h in health.values() if h)},
        "default_policy": str(backend.default_policy()),
        "buckets": buckets,
        "gateway": {"name": backend.name,  # this gateway process, the one that answered
                    "write_budget_bytes": backend.write_budget.limit,
                    "writes_in_flight_bytes": backend.write_budget.used,
                    "writes_waiting": backend.write_budget.waiting,
                    "read_ahead_budget_bytes": backend.read_ahead.limit,
                    "read_ahead_bytes": backend.read_ahead.used},
    }
