"""The operator's HTTP API on the gateway, under /_shoal/admin/ (JSON, not S3).

Authentication: ``Authorization: Bearer TOKEN``, compared in constant time with the
admin token (today the cluster secret; bucket names cannot start with '_', so these
paths never shadow a bucket). A missing or wrong token answers 401/403 and does nothing.

Routes:

* ``GET /_shoal/admin/objects/{bucket}/{key}`` -- shard health of one object: per block,
  every slot's node, zone and state (hash-checked on the node), and whether the object
  is at full redundancy (``full``: k+m distinct nodes, zone spread, every shard healthy;
  see cluster.shardhealth), and which metadata owners hold the current record
  (``metadata_full`` when all of them do).
* ``GET /_shoal/admin/repair`` -- every storage node's background work (repair, scrub,
  garbage collection, metadata sync) and the cluster-wide repair progress.
* ``POST /_shoal/admin/run?task=repair|scrub|gc|sync`` -- start a pass on every live node.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cluster.metadata import QuorumError
from cluster.nodeclient import NodeUnavailable
from cluster.shardhealth import FailureClock, assess_block, probe_block
from gateway.errors import S3Error
from gateway.records import object_key

if TYPE_CHECKING:
    from gateway.backend import Backend
    from gateway.catalog import Catalog

PREFIX = "/_shoal/admin/"
TASKS = ("repair", "scrub", "gc", "sync")


class AdminApi:
    def __init__(self, backend: Backend, catalog: Catalog, token: bytes) -> None:
        self.backend = backend
        self.catalog = catalog
        self.token = token
        self.failures = FailureClock()

    def authorized(self, request: Request) -> Response | None:
        """None when the bearer token is right, else the 401/403 to send."""
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return JSONResponse({"error": "admin token required"}, 401,
                                {"WWW-Authenticate": "Bearer"})
        if not self.token or not hmac.compare_digest(header[7:].encode(), self.token):
            return JSONResponse({"error": "wrong admin token"}, 403)
        return None

    async def handle(self, request: Request) -> Response:
        refused = self.authorized(request)
        if refused is not None:
            return refused
        path, method = request.url.path[len(PREFIX):], request.method
        if path.startswith("objects/") and method == "GET":
            bucket, _, key = path[len("objects/"):].partition("/")
            return await self.object_health(bucket, key)
        if path == "repair" and method == "GET":
            return JSONResponse(await self.repair_status())
        if path == "run" and method == "POST":
            return await self.run(request.query_params.get("task", "repair"))
        return JSONResponse({"error": "no such admin route"}, 404)

    def _members(self) -> dict:
        members = self.backend.node_members()
        self.failures.observe(members)
        return {m.name: m for m in members}

    async def object_health(self, bucket: str, key: str) -> Response:
        try:
            rec = await self.catalog.object(bucket, key)
        except S3Error as err:
            return JSONResponse({"error": err.code, "bucket": bucket, "key": key},
                                err.status if err.status < 500 else 503)
        members = self._members()
        blocks = []
        for b in rec.to_dict()["blocks"]:
            probed = await probe_block(self.backend.client, members, b, verify=True)
            blocks.append(assess_block(b, members, probed, self.failures.lost).to_dict())
        replicas = await self._record_replicas(bucket, object_key(bucket, key), rec.hlc)
        data_full = all(b["full"] for b in blocks)
        return JSONResponse({
            "bucket": bucket, "key": key, "size": rec.size, "inline": rec.inline is not None,
            "policy": rec.policy, "hlc": rec.hlc, "blocks": blocks, "data_full": data_full,
            "metadata": replicas, "full": data_full,
            "metadata_full": all(v == "current" for v in replicas.values()),
        })

    async def _record_replicas(self, partition: str, key: str, hlc: list) -> dict[str, str]:
        """Each metadata owner's copy of the record: current, stale, missing or down."""
        try:
            owners = self.backend.meta.owners(partition)
        except QuorumError:
            return {}

        async def one(api: str) -> str:
            try:
                found = (await self.backend.client.meta_get(api, [key]))[0]
            except NodeUnavailable:
                return "down"
            if found is None:
                return "missing"
            return "current" if found.get("hlc") == hlc else "stale"

        states = await asyncio.gather(*(one(m.api) for m in owners))
        return {m.name: s for m, s in zip(owners, states, strict=True)}

    async def repair_status(self) -> dict:
        """Every node's report and the cluster's repair progress (done/total partitions)."""
        members = [m for m in self._members().values() if m.status == "alive" and m.api]

        async def one(api: str) -> dict:
            try:
                return await self.backend.client.admin_status(api)
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
        return {"nodes": nodes, "progress": {
            "partitions": total, "partitions_done": done, "slots_repaired": repaired,
            "blocks_waiting": waiting,
            "running": any(r.get("repair", {}).get("running") for r in nodes.values())}}

    async def run(self, task: str) -> Response:
        if task not in TASKS:
            return JSONResponse({"error": f"task must be one of {', '.join(TASKS)}"}, 400)
        members = [m for m in self._members().values() if m.status == "alive" and m.api]
        results = await asyncio.gather(
            *(self.backend.client.admin_run(m.api, task) for m in members),
            return_exceptions=True)
        started = [m.name for m, r in zip(members, results, strict=True)
                   if not isinstance(r, BaseException)]
        return JSONResponse({"task": task, "started": started})
