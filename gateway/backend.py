"""What a gateway process talks to: membership, the node client, replicated metadata.

The gateway holds no state that matters; everything here is a cache of the cluster
(membership) or a connection pool, so a gateway can be killed at any moment.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from cluster.hlc import HybridClock
from cluster.membership import Member, Membership
from cluster.metadata import MetadataReplicator, writable_candidates
from cluster.nodeclient import NodeClient
from gateway.budget import READ_AHEAD_BUDGET, WRITE_BUDGET, ByteBudget
from placement.hrw import Candidate
from placement.policy import StoragePolicy, default_policy

log = logging.getLogger(__name__)


class Backend:
    def __init__(self, name: str, membership: Membership, client: NodeClient) -> None:
        self.name = name
        self.membership = membership
        self.client = client
        self.clock = HybridClock(name)
        self.meta = MetadataReplicator(client, membership)
        self.write_budget = ByteBudget(WRITE_BUDGET)  # block bytes in flight, all uploads
        self.read_ahead = ByteBudget(READ_AHEAD_BUDGET)  # blocks fetched ahead, all GETs
        self._tasks: set[asyncio.Task] = set()

    def node_members(self) -> list[Member]:
        return [m for m in self.membership.members() if m.role == "node"]

    def api_of(self, name: str) -> str | None:
        """The node API URL of a node that has not left, or None."""
        for m in self.node_members():
            if m.name == name and m.status != "left" and m.api:
                return m.api
        return None

    def suspect(self, name: str, api: str) -> bool:
        """A node to ask only as a last resort: failed in gossip, or failing our calls."""
        if self.client.is_down(api):
            return True
        return any(m.name == name and m.status != "alive" for m in self.node_members())

    def writable_nodes(self) -> list[Candidate]:
        """Nodes that take new shards (cluster.metadata.writable_candidates)."""
        return writable_candidates(self.node_members(), self.client)

    def default_policy(self) -> StoragePolicy:
        alive = sum(1 for m in self.node_members() if m.status == "alive" and not m.draining)
        return default_policy(max(alive, 1))

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run cleanup work in the background; it outlives the request that started it."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("background task failed: %r", task.exception())
