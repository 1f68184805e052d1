"""Draining a node (`shoal node drain ID`): everything moves off it, then it leaves.

The drain runs in the node being drained, as a watcher; the moving is done by others:

1. ``begin`` writes a marker file into the node's data directory (a restarted node keeps
   draining) and sets the serf tag ``drain=1``. Within a second every gateway stops
   placing new shards on it and every process computes metadata owners without it
   (cluster/metadata.py: it stays a *handoff* owner -- written to, read as a fallback --
   until it leaves).
2. The repairers that lead each partition see its slots as ``draining`` and copy those
   shards, unchanged, to new nodes (cluster/repair.py); the drain asks them to start a
   pass at once, and again while slots remain.
3. Its own anti-entropy pushes every metadata partition it holds to the new owners.
4. Each watcher pass walks every record (quorum scans) and counts the slots still placed
   on this node. Done when two passes in a row, the later one starting at least
   ``SETTLE`` seconds after the drain began (so writes that were in flight when the tag
   spread are committed and seen), find none, and a metadata sync pass that began after
   the drain finished without errors. Then ``on_drained`` makes the node leave the
   cluster gracefully and exit.

Progress (``status``): slots found at the first count, slots left, passes, state.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from cluster.layout import DATA_KINDS
from cluster.membership import Member
from cluster.metadata import MetadataReplicator, QuorumError
from cluster.nodeclient import NodeClient, NodeUnavailable
from cluster.walk import bucket_names, live_records

log = logging.getLogger(__name__)

MARKER = "draining"
SETTLE = 5.0  # seconds after the tag for in-flight writes to land
ASK_EVERY = 10.0  # seconds between requests to the repairers while slots remain


class Drainer:
    def __init__(self, name: str, data: Path, client: NodeClient, meta: MetadataReplicator,
                 members: Callable[[], list[Member]],
                 sync_status: Callable[[], dict],
                 set_tags: Callable[[dict[str, str]], Awaitable[None]] | None = None,
                 on_drained: Callable[[], None] | None = None) -> None:
        self.name = name
        self.marker = data / MARKER
        self.client = client
        self.meta = meta
        self._members = members
        self._sync_status = sync_status
        self.set_tags = set_tags
        self.on_drained = on_drained
        self.began: float | None = time.time() if self.marker.exists() else None
        self.progress: dict = {"state": "draining" if self.began else "serving"}
        self._quiet = 0
        self._asked = 0.0

    def status(self) -> dict:
        return {**self.progress, "began": self.began}

    async def begin(self) -> None:
        """Start draining (idempotent); survives a restart through the marker file."""
        if self.began is None:
            self.marker.write_text("drain requested\n")
            self.began = time.time()
            self.progress = {"state": "draining", "slots_first": None, "slots_left": None,
                             "passes": 0}
        if self.set_tags is not None:
            await self.set_tags({"drain": "1"})

    async def run_pass(self) -> None:
        if self.began is None or self.progress.get("state") == "drained":
            return
        started = time.time()
        try:
            left = await self.count_slots()
        except QuorumError as exc:
            log.info("drain: metadata unavailable: %s", exc)
            return
        p = self.progress
        p["passes"] = p.get("passes", 0) + 1
        p["slots_left"] = left
        if p.get("slots_first") is None:
            p["slots_first"] = left
        if left:
            self._quiet = 0
            await self._ask_repairers()
            return
        if started - self.began >= SETTLE and self._metadata_handed_off():
            self._quiet += 1
        if self._quiet >= 2:
            p["state"] = "drained"
            log.info("drain of %s complete: leaving the cluster", self.name)
            if self.on_drained is not None:
                self.on_drained()

    async def count_slots(self) -> int:
        """Shard slots that live records (objects, versions, parts) still place here."""
        count = 0
        for bucket in await bucket_names(self.meta):
            async for _, rec in live_records(self.meta, bucket, DATA_KINDS):
                for block in rec.get("blocks") or []:
                    count += sum(1 for ref in block["shards"] if ref and ref[0] == self.name)
        return count

    def _metadata_handed_off(self) -> bool:
        sync = self._sync_status()
        return (self.began is not None and (sync.get("started") or 0) > self.began
                and sync.get("finished") is not None and not sync.get("running")
                and sync.get("errors", 1) == 0)

    async def _ask_repairers(self) -> None:
        if time.monotonic() - self._asked < ASK_EVERY:
            return
        self._asked = time.monotonic()
        for m in self._members():
            if m.role == "node" and m.status == "alive" and m.api and m.name != self.name:
                try:
                    await self.client.admin_run(m.api, "repair")
                except NodeUnavailable:
                    continue
