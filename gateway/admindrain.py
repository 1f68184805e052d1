"""Draining a node, for the admin API (gateway/admin.py routes here).

* ``POST nodes/{name}/drain`` -- refuse (409 DrainRefused, nothing changed) when the rest
  of the cluster cannot hold what the node holds at the bucket policies: a bucket whose
  policy the remaining writable nodes cannot place (k+m nodes, zone spread), or more
  bytes on the node than the free capacity of the others. Otherwise the node begins
  draining (cluster/drain.py) and every node is asked to start a repair pass, which
  copies the node's shards away.
* ``GET nodes/{name}/drain`` -- the node's drain progress; ``{"state": "left"}`` once it
  has left the cluster.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from cluster.membership import Member
from cluster.metadata import candidates
from cluster.nodeclient import NodeUnavailable
from placement.policy import StoragePolicy
from placement.spread import feasible

if TYPE_CHECKING:
    from gateway.backend import Backend
    from gateway.catalog import Catalog


class DrainError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _member(backend: Backend, name: str) -> Member | None:
    return next((m for m in backend.node_members() if m.name == name), None)


async def drain_problems(catalog: Catalog, node: Member) -> list[str]:
    """Why the cluster without ``node`` could not hold its data; empty when it can."""
    backend = catalog.backend
    rest = [m for m in backend.node_members()
            if m.status == "alive" and m.api and not m.draining and m.name != node.name]
    problems = []
    for bucket in await catalog.buckets():
        policy = StoragePolicy.from_dict(bucket.policy)
        issue = feasible(policy, candidates(rest))
        if issue:
            problems.append(f"bucket {bucket.name}: {issue}")
    health = await asyncio.gather(*(backend.client.health(m.api) for m in [node, *rest]),
                                  return_exceptions=True)
    if isinstance(health[0], BaseException):
        return [*problems, f"node {node.name} does not answer: {health[0]}"]
    held = health[0].get("bytes", 0)
    free = sum(max(m.capacity - h.get("bytes", 0), 0)
               for m, h in zip(rest, health[1:], strict=True) if isinstance(h, dict))
    if held > free:
        problems.append(f"node {node.name} holds {held / 1e9:.2f} GB; the other nodes have "
                        f"{free / 1e9:.2f} GB free")
    return problems


async def begin(catalog: Catalog, name: str) -> dict[str, Any]:
    backend = catalog.backend
    node = _member(backend, name)
    if node is None or node.status == "left":
        raise DrainError(404, "NoSuchNode", f"no storage node {name} in the cluster")
    if node.status != "alive" or not node.api:
        raise DrainError(409, "DrainRefused", f"node {name} is {node.status}: only a live "
                         "node can be drained (a failed one is repaired around)")
    if not node.draining:
        problems = await drain_problems(catalog, node)
        if problems:
            raise DrainError(409, "DrainRefused", "the rest of the cluster cannot hold node "
                             f"{name}'s data: " + "; ".join(problems))
    try:
        status = await backend.client.admin_drain(node.api)
    except NodeUnavailable as exc:
        raise DrainError(503, "ServiceUnavailable", f"node {name}: {exc}") from None
    others = [m for m in backend.node_members() if m.status == "alive" and m.api]
    await asyncio.gather(*(backend.client.admin_run(m.api, "repair") for m in others),
                         return_exceptions=True)
    return {"node": name, **status}


async def progress(backend: Backend, name: str) -> dict[str, Any]:
    node = _member(backend, name)
    if node is None or node.status == "left":
        return {"node": name, "state": "left"}
    if node.status != "alive" or not node.api:
        return {"node": name, "state": node.status}
    try:
        report = await backend.client.admin_status(node.api)
    except NodeUnavailable as exc:
        return {"node": name, "state": "unreachable", "error": str(exc)}
    return {"node": name, **report.get("drain", {"state": "unknown"})}
