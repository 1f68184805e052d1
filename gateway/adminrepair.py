"""Shard health and background work, for the admin API (gateway/admin.py routes here).

* ``GET objects/{bucket}/{key}`` -- shard health of one object: per block, every slot's
  node, zone and state (hash-checked on the node), ``full`` (k+m distinct nodes, zone
  spread, every shard healthy; see cluster.shardhealth), and which metadata owners hold
  the current record (``metadata_full`` when all of them do).
* ``GET repair`` -- every storage node's background work (repair, scrub, garbage
  collection, metadata sync) and the cluster-wide repair progress.
* ``POST run?task=repair|rebalance|scrub|gc|sync`` -- start a pass on every live node.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from starlette.responses import JSONResponse, Response

from cluster.metadata import QuorumError
from cluster.nodeclient import NodeUnavailable
from cluster.shardhealth import FailureClock, assess_block, probe_block
from gateway.adminclient import TASKS
from gateway.errors import S3Error
from gateway.records import object_key

if TYPE_CHECKING:
    from gateway.backend import Backend
    from gateway.catalog import Catalog

FAILURES = FailureClock()  # when each node was first seen failed, per gateway process


def _members(backend: Backend) -> dict:
    members = backend.node_members()
    FAILURES.observe(members)
    return {m.name: m for m in members}

async def object_health(backend: Backend, catalog: Catalog, bucket: str, key: str
                        ) -> Response:
    try:
        rec = await catalog.object(bucket, key)
    except S3Error as err:
        return JSONResponse({"error": err.code, "bucket": bucket, "key": key},
                            err.status if err.status < 500 else 503)
    members = _members(backend)
    blocks = []
    for b in rec.to_dict()["blocks"]:
        probed = await probe_block(backend.client, members, b, verify=True)
        blocks.append(assess_block(b, members, probed, FAILURES.lost).to_dict())
    replicas = await _record_replicas(backend, bucket, object_key(bucket, key), rec.hlc)
    data_full = all(b["full"] for b in blocks)
    return JSONResponse({
        "bucket": bucket, "key": key, "size": rec.size, "inline": rec.inline is not None,
        "policy": rec.policy, "hlc": rec.hlc, "blocks": blocks, "data_full": data_full,
        "metadata": replicas, "full": data_full,
        "metadata_full": all(v == "current" for v in replicas.values()),
    })

async def _record_replicas(backend: Backend, partition: str, key: str, hlc: list
                           ) -> dict[str, str]:
    """Each metadata owner's copy of the record: current, stale, missing or down."""
    try:
        owners = backend.meta.owners(partition)
    except QuorumError:
        return {}

    async def one(api: str) -> str:
        try:
            found = (await backend.client.meta_get(api, [key]))[0]
        except NodeUnavailable:
            return "down"
        if found is None:
            return "missing"
        return "current" if found.get("hlc") == hlc else "stale"

    states = await asyncio.gather(*(one(m.api) for m in owners))
    return {m.name: s for m, s in zip(owners, states, strict=True)}

async def repair_status(backend: Backend) -> dict:
    """Every node's report and the cluster's repair progress (done/total partitions)."""
    members = [m for m in _members(backend).values() if m.status == "alive" and m.api]

    async def one(api: str) -> dict:
        try:
            return await backend.client.admin_status(api)
        except NodeUnavailable as exc:
            return {"error": str(exc)}

    reports = await asyncio.gather(*(one(m.api) for m in members))
    nodes = {m.name: r for m, r in zip(members, reports, strict=True)}
    total = done = repaired = waiting = 0
    for r in nodes.values():
        rep = r.get("repair", {})
        total += rep.get("partitions", 0)
        done += rep.get("partitions_done", 0)
        repaired += rep.get("slots_repaired_total", 0)
        waiting += rep.get("blocks_waiting", 0)
    moves = [r.get("rebalance", {}) for r in nodes.values()]
    return {"nodes": nodes, "progress": {
        "partitions": total, "partitions_done": done, "slots_repaired": repaired,
        "blocks_waiting": waiting,
        "running": any(r.get("repair", {}).get("running") for r in nodes.values())},
        "rebalance": {
            "running": any(m.get("running") for m in moves),
            "passes": sum(m.get("passes", 0) for m in moves),
            "slots_moved": sum(m.get("slots_moved", 0) for m in moves),
            "bytes_moved": sum(m.get("bytes_written", 0) for m in moves)}}

async def run(backend: Backend, task: str) -> Response:
    if task not in TASKS:
        return JSONResponse({"error": f"task must be one of {', '.join(TASKS)}"}, 400)
    members = [m for m in _members(backend).values() if m.status == "alive" and m.api]
    results = await asyncio.gather(
        *(backend.client.admin_run(m.api, task) for m in members),
        return_exceptions=True)
    started = [m.name for m, r in zip(members, results, strict=True)
               if not isinstance(r, BaseException)]
    return JSONResponse({"task": task, "started": started})
