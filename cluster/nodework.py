"""A storage node's background work: repair, rebalance, scrub, garbage collection,
metadata sync, and watching its own drain.

Each task runs in the node's event loop as one loop: a pass, then a wait of its interval
(or until ``run_now`` or a membership change wakes it). Passes of one task never
overlap. Settings come from the environment (seconds and MB/s; tests set them small):

    SHOAL_REPAIR_DEADLINE  30      a failed node's shards are rebuilt after this long
    SHOAL_REPAIR_RATE      50      MB/s of shard bytes a repair may read+write (0: no limit)
    SHOAL_REPAIR_INTERVAL  60      seconds between repair passes
    SHOAL_REPAIR_FULL_INTERVAL 3600 seconds between passes that probe every record even
                                   when nothing changed (others probe changed records only)
    SHOAL_SCRUB_RATE       20      MB/s the scrubber re-hashes
    SHOAL_SCRUB_INTERVAL   86400   seconds between scrub passes
    SHOAL_GC_GRACE         21600   an orphan shard younger than this is never deleted
    SHOAL_GC_INTERVAL      3600    seconds between garbage-collection passes
    SHOAL_SYNC_INTERVAL    30      seconds between anti-entropy passes
    SHOAL_TOMBSTONE_GRACE  3600    a delete's tombstone is kept at least this long
    SHOAL_REBALANCE_INTERVAL 0     seconds between rebalance passes (0: only when asked,
                                   by `shoal rebalance`)

A drain (cluster/drain.py) is watched every DRAIN_INTERVAL seconds once it has begun.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from pathlib import Path

from cluster.antientropy import AntiEntropy
from cluster.drain import Drainer
from cluster.gc import Collector
from cluster.membership import Membership
from cluster.metadata import MetadataReplicator
from cluster.nodeclient import NodeClient
from cluster.pacing import Pacer
from cluster.repair import Repairer
from cluster.scrub import Scrubber
from cluster.shardhealth import FailureClock
from cluster.store import NodeStore

log = logging.getLogger(__name__)

MB = 1_000_000
TASKS = ("repair", "rebalance", "scrub", "gc", "sync", "drain")
DRAIN_INTERVAL = 3.0


@dataclass
class WorkConfig:
    repair_deadline: float = 30.0
    repair_rate: float = 50.0
    repair_interval: float = 60.0
    repair_full_interval: float = 3600.0
    scrub_rate: float = 20.0
    scrub_interval: float = 86400.0
    gc_grace: float = 21600.0
    gc_interval: float = 3600.0
    sync_interval: float = 30.0
    tombstone_grace: float = 3600.0
    rebalance_interval: float = 0.0

    @classmethod
    def from_env(cls) -> WorkConfig:
        values = {}
        for f in fields(cls):
            raw = os.environ.get(f"SHOAL_{f.name.upper()}")
            if raw:
                values[f.name] = float(raw)
        return cls(**values)


class NodeWork:
    """Owns the background tasks of one node; ``attach`` then ``start`` in the loop."""

    def __init__(self, name: str, store: NodeStore, secret: bytes, config: WorkConfig,
                 data: Path) -> None:
        self.name = name
        self.data = data
        self.store = store
        self.config = config
        self.client = NodeClient(secret)
        self.membership: Membership | None = None
        self._events = {t: asyncio.Event() for t in TASKS}
        self._loops: list[asyncio.Task] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.tasks: dict = {}

    def attach(self, membership: Membership,
               set_tags: Callable[[dict[str, str]], Awaitable[None]] | None = None,
               on_drained: Callable[[], None] | None = None) -> None:
        """Create the tasks; ``set_tags`` changes this node's serf tags, ``on_drained``
        makes it leave the cluster and exit once a drain is complete."""
        self.membership = membership
        members = membership.members
        meta = MetadataReplicator(self.client, membership)
        self.failures = FailureClock(self.config.repair_deadline)
        pacer = Pacer(self.config.repair_rate * MB)  # repair and rebalance share the rate
        sync = AntiEntropy(self.name, self.store, self.client, meta, members,
                           self.config.tombstone_grace)
        self.tasks = {
            "repair": Repairer(self.name, self.client, meta, members, self.failures, pacer,
                               changes=self.store.changes,
                               full_every=self.config.repair_full_interval),
            "rebalance": Repairer(self.name, self.client, meta, members, self.failures, pacer,
                                  rebalance=True),
            "scrub": Scrubber(self.store, Pacer(self.config.scrub_rate * MB), set_tags),
            "gc": Collector(self.name, self.store, meta, self.config.gc_grace),
            "sync": sync,
            "drain": Drainer(self.name, self.data, self.client, meta, members, sync.status,
                             set_tags, on_drained),
        }
        membership.on_change(self._membership_changed)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.failures.observe(self.membership.members() if self.membership else [])
        await self.client.start()
        intervals = {"repair": self.config.repair_interval, "scrub": self.config.scrub_interval,
                     "gc": self.config.gc_interval, "sync": self.config.sync_interval,
                     "rebalance": self.config.rebalance_interval or None,
                     "drain": DRAIN_INTERVAL}
        for name, interval in intervals.items():
            # A (re)started node syncs metadata at once: it may have missed writes.
            first = 1.0 if name == "sync" else interval
            self._loops.append(asyncio.ensure_future(self._run(name, interval, first)))

    async def stop(self) -> None:
        """Cancel the loops and wait for them (idempotent)."""
        loops, self._loops = self._loops, []
        for t in loops:
            t.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        await self.client.close()

    def status(self) -> dict:
        out = {name: task.status() for name, task in self.tasks.items()}
        return {"name": self.name, **out,
                "config": {f.name: getattr(self.config, f.name) for f in fields(self.config)}}

    async def begin_drain(self) -> dict:
        if "drain" not in self.tasks:
            raise RuntimeError("the node is still starting")
        drainer: Drainer = self.tasks["drain"]
        await drainer.begin()
        self.run_now("repair")
        return drainer.status()

    def run_now(self, task: object) -> None:
        if task not in self._events:
            raise ValueError(f"task must be one of {', '.join(TASKS)}")
        if task == "repair" and "repair" in self.tasks:
            self.tasks["repair"].ask_full()  # whoever asks wants everything looked at
        self._events[task].set()  # type: ignore[index]

    def _membership_changed(self) -> None:
        # Called from the membership thread. A change may make this node an owner (sync
        # pulls), or start a failure clock (repair after the deadline).
        if self._loop is None or self.membership is None:
            return
        self.failures.observe(self.membership.members())
        loop = self._loop
        loop.call_soon_threadsafe(self._events["sync"].set)
        loop.call_soon_threadsafe(
            loop.call_later, self.config.repair_deadline + 1.0, self._events["repair"].set)

    async def _run(self, name: str, interval: float | None, first: float | None) -> None:
        """Passes of one task; ``interval`` None: only when asked (``run_now``)."""
        event = self._events[name]
        wait = first
        while True:
            try:
                await asyncio.wait_for(event.wait(), wait)
            except TimeoutError:
                pass
            event.clear()
            wait = interval
            try:
                await self.tasks[name].run_pass()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s pass failed", name)
