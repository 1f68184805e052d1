"""Replicated metadata: quorum reads and writes of LWW records over HRW owners.

Metadata is partitioned (by bucket; bucket records themselves in one partition). A
partition's owners are the top ``R`` nodes by rendezvous hash over every node that has
not *left* the cluster and is not being drained: a failed node stays an owner, so a crash
never silently moves a partition to a node that has none of its data (moving data on
membership change is the handoff's job, not the read path's) -- until gossip forgets it
(SHOAL_FAILED_TIMEOUT, cluster/process.py), after which the next node by rendezvous hash
owns the partition and pulls it from the others.

A draining node that would otherwise own the partition is its *handoff* owner until it
leaves: writes reach it too (in the background, not counted for W) and reads fall back to
it when the owners cannot make R_q -- so nothing it holds is out of reach while its
anti-entropy pushes the partition to the new owners (cluster/antientropy.py).

Consistency contract (see docs/architecture.md):

* a write is sent to all owners and acknowledged after ``W`` of them applied it; the
  rest finish in the background;
* a read asks ``R_q`` owners (another when one fails or is slow) and answers from the
  newest reply, with ``W + R_q > R`` so it sees every acknowledged write; stale
  owners among those asked are repaired;
* when fewer than ``R_q`` owners answer but at least one does, the read is served
  *degraded* from what answered (availability over strictness when more than R - W
  owners are down); with none, ``QuorumError``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson

from cluster.hlc import newer
from cluster.membership import Member, Membership
from cluster.nodeclient import NodeClient, NodeUnavailable
from placement.hrw import Candidate, owners

log = logging.getLogger(__name__)

Record = dict[str, Any]
HEDGE_AFTER = 0.3  # seconds before a slow owner's read is also asked of another owner


class QuorumError(Exception):
    """Not enough owners answered; the caller maps it to 503 ServiceUnavailable."""


def candidates(members: Sequence[Member]) -> list[Candidate]:
    """Placement's view of storage nodes: name, zone and capacity as weight."""
    out = []
    for m in members:
        weight = max(m.capacity, 1) / 2**40 if m.capacity else 1.0
        out.append(Candidate(name=m.name, zone=m.zone or "default", weight=weight))
    return out


def writable_candidates(members: Iterable[Member], client: NodeClient) -> list[Candidate]:
    """Nodes that take new shards, as placement candidates: alive in gossip, not
    draining, and not failing this process's calls."""
    return candidates([m for m in members if m.role == "node" and m.status == "alive"
                       and m.api and not m.draining and not client.is_down(m.api)])


class MetadataReplicator:
    def __init__(
        self,
        client: NodeClient,
        membership: Membership,
        r: int = 3,
        w: int = 2,
        rq: int = 2,
    ) -> None:
        self.client = client
        self.membership = membership
        self.r, self.w, self.rq = r, w, rq
        self._background: set[asyncio.Task] = set()
        self._owners: dict[tuple[str, int], tuple[list[Member], list[Member]]] = {}

    def owners(self, partition: str) -> list[Member]:
        return list(self._placed(partition)[0])

    def handoff(self, partition: str) -> list[Member]:
        """Draining nodes that owned the partition before their drain began."""
        return list(self._placed(partition)[1])

    def _placed(self, partition: str) -> tuple[list[Member], list[Member]]:
        key = (partition, self.membership.version)  # a new view invalidates every entry
        cached = self._owners.get(key)
        if cached is not None:
            return cached
        nodes = [m for m in self.membership.members()
                 if m.role == "node" and m.status != "left"]
        by_name = {m.name: m for m in nodes}
        active = [m for m in nodes if not m.draining]
        if not active:
            raise QuorumError("no storage nodes in the cluster")
        picked = [by_name[c.name] for c in owners(partition.encode(), candidates(active), self.r)]
        handoff = []
        if len(active) < len(nodes):  # someone drains: who owned the partition before?
            before = owners(partition.encode(), candidates(nodes), self.r)
            handoff = [by_name[c.name] for c in before if by_name[c.name].draining]
        if len(self._owners) > 4096:
            self._owners.clear()
        self._owners[key] = (picked, handoff)
        return picked, handoff

    def _quorums(self, n_owners: int) -> tuple[int, int]:
        # A cluster smaller than R keeps the same overlap rule on what it has.
        w = min(self.w, n_owners)
        rq = min(self.rq, n_owners)
        if n_owners < self.r:
            w = n_owners // 2 + 1
            rq = n_owners - w + 1
        return w, rq

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def put(self, partition: str, items: list[tuple[str, Record]]) -> None:
        """Write ``items`` (already stamped) to the partition's owners; returns at W acks.
        Short of W, owners marked down for a refused connection are asked once more, as
        reads do (``_gather``): a restarted owner answers at once, a dead one refuses at
        once, and without it a write failed for the breaker's cooldown after a restart."""
        targets = self.owners(partition)
        need, _ = self._quorums(len(targets))
        for m in self.handoff(partition):
            self._spawn(_quietly(self.client.meta_put(m.api, items)))
        acked, failed = await self._put_to(targets, items, need)
        if acked < need and self.client.unmark_refused([m.api for m in failed]):
            more, _ = await self._put_to(failed, items, need - acked)
            acked += more
        if acked < need:
            raise QuorumError(f"metadata write reached {acked} of {need} owners")

    async def _put_to(self, targets: list[Member], items: list[tuple[str, Record]],
                      need: int) -> tuple[int, list[Member]]:
        """(acks, owners that could not take the write), returning once ``need`` acked;
        the other writes finish in the background."""
        pending = {asyncio.ensure_future(self.client.meta_put(m.api, items)): m
                   for m in targets}
        acked, failed = 0, []
        while pending and acked < need:
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                member = pending.pop(task)
                if task.exception() is None:
                    acked += 1
                elif isinstance(task.exception(), NodeUnavailable):
                    failed.append(member)
                else:
                    raise task.exception()  # type: ignore[misc]
        for task in pending:
            self._spawn(_quietly(task))
        return acked, failed

    async def get(self, partition: str, key: str, strict: bool = False) -> Record | None:
        """The newest record for ``key`` (tombstones included), or None.

        A copy no newer than the purge mark of an owner that lacks the key is not
        counted: that owner purged a delete of it, and refuses the copy too
        (cluster/store.py). Such a copy is left on a node that returns after a long
        absence until its own anti-entropy drops it."""
        results = await self._gather(partition,
                                     lambda api: self.client.meta_read(api, [key]), strict)
        raws = [raw for _, ((raw, _),) in results]
        if all(raw == raws[0] for raw in raws):  # owners agree (most reads): decode once
            return None if raws[0] is None else orjson.loads(raws[0])
        purged = max(mark for _, ((_, mark),) in results)
        recs = [None if raw is None else orjson.loads(raw) for raw in raws]
        recs = [None if rec is not None and rec["hlc"][0] <= purged else rec for rec in recs]
        best: Record | None = None
        for rec in recs:
            if rec is not None and newer(rec, best):
                best = rec
        if best is not None:
            stale = [m for (m, _), rec in zip(results, recs, strict=True) if rec != best]
            for m in stale:
                self._spawn(_quietly(self.client.meta_put(m.api, [(key, best)])))
        return best

    async def scan(
        self, partition: str, start: str, end: str, limit: int, strict: bool = False,
        fields: list[str] | None = None,
    ) -> tuple[list[tuple[str, Record]], str | None]:
        """Merged records with keys in [start, end), newest version of each key.

        Returns (items, resume): ``resume`` is the key to continue from, or None when the
        range is exhausted. Items past the smallest horizon of a truncated owner are held
        back: that owner has not shown them yet, so they are not complete. ``strict``
        refuses a degraded answer (QuorumError), for callers that act on absence.

        ``fields`` (listings) asks the owners for only those fields of each record, and
        for live records only: a delete every owner asked agrees on is not shipped (after
        a mass delete, tombstones were nearly all of a listing's cost).

        A key that some owners show and others do not -- a delete or a write not yet
        everywhere, or a delete one owner purged -- is settled by a quorum read of that
        key (``get``), which sees every acknowledged write.
        """
        if fields is None:
            results = [(items, truncated, items[-1][0] if truncated and items else None)
                       for _, (items, truncated) in await self._gather(
                           partition, lambda api: self.client.meta_scan(api, start, end, limit),
                           strict)]
        else:  # small records come as stored: owners that agree send the same bytes
            pages = [page for _, page in await self._gather(
                partition,
                lambda api: self.client.meta_scan_framed(api, start, end, limit, fields, True),
                strict)]
            if len({page.body for page in pages}) == 1:  # they agree: decode one
                horizon = _horizon(page.horizon() for page in pages)
                items = pages[0].records()
                return items, None if horizon is None else horizon + "\x00"
            results = [(page.pairs(), page.truncated, page.horizon()) for page in pages]
        merged: dict[str, Record | bytes] = {}
        shown: dict[str, int] = {}  # key -> how many owners showed it
        for items, _, _ in results:
            for k, rec in items:
                have = merged.get(k)
                shown[k] = shown.get(k, 0) + 1
                # Owners mostly agree: an equal copy settles it without reading clocks
                # (the clock checks were a fifth of a listing's merge CPU).
                if have is None:
                    merged[k] = rec
                elif rec != have:
                    mine, theirs = _record(have), _record(rec)
                    merged[k] = theirs if newer(theirs, mine) else mine
        horizon = _horizon(h for _, _, h in results)
        keys = sorted(k for k in merged if horizon is None or k <= horizon)
        resume = None if horizon is None else horizon + "\x00"
        doubtful = [k for k in keys if shown[k] < len(results)]
        settled = await asyncio.gather(*(self.get(partition, k, strict) for k in doubtful))
        merged.update(zip(doubtful, settled, strict=True))
        keys = [k for k in keys if merged[k] is not None]
        return [(k, _record(merged[k])) for k in keys], resume  # type: ignore[arg-type]

    async def _gather(self, partition: str, call: Callable[[str], Any], strict: bool = False
                      ) -> list[tuple[Member, Any]]:
        """Answers from R_q owners. Only R_q are asked at first (owners the node client
        has not marked down first); another is asked when one fails or has not answered
        within HEDGE_AFTER, so a hung owner costs a short delay, not a stall. When none
        answered, owners marked down for a refused connection are asked once more: a
        restarted node answers at once, a dead one refuses at once."""
        results, need = await self._ask_owners(partition, call)
        if not results and self.client.unmark_refused(
                [m.api for m in self.owners(partition) + self.handoff(partition)]):
            results, need = await self._ask_owners(partition, call)
        if not results:
            raise QuorumError("no metadata owner answered")
        if len(results) < need and strict:
            raise QuorumError(f"{len(results)} of {need} metadata owners answered")
        if len(results) < need:
            log.warning("degraded metadata read of %s: %d of %d owners", partition,
                        len(results), need)
        return results

    async def _ask_owners(self, partition: str, call: Callable[[str], Any]
                          ) -> tuple[list[tuple[Member, Any]], int]:
        """(answers, how many are needed): one round of ``_gather``."""
        targets = self.owners(partition)
        _, need = self._quorums(len(targets))
        waiting = sorted(targets, key=lambda m: self.client.is_down(m.api))
        waiting += self.handoff(partition)  # asked only when owners fail to answer
        tasks: dict[asyncio.Future, Member] = {}
        results: list[tuple[Member, Any]] = []

        def ask(n: int) -> None:
            for _ in range(min(n, len(waiting))):
                m = waiting.pop(0)
                tasks[asyncio.ensure_future(call(m.api))] = m

        ask(need)
        try:
            while len(results) < need and (tasks or waiting):
                if not tasks:
                    ask(need - len(results))
                    continue
                done, _ = await asyncio.wait(
                    tasks, timeout=HEDGE_AFTER if waiting else None,
                    return_when=asyncio.FIRST_COMPLETED)
                if not done:
                    ask(1)
                for t in done:
                    member = tasks.pop(t)
                    if t.exception() is None:
                        results.append((member, t.result()))
                    elif isinstance(t.exception(), NodeUnavailable):
                        ask(1)
                    else:
                        raise t.exception()  # type: ignore[misc]
        finally:
            for t in tasks:
                t.cancel()
        return results, need


def _horizon(horizons: Iterable[str | None]) -> str | None:
    """The smallest horizon of the truncated owners (None: every owner reached the end)."""
    return min((h for h in horizons if h is not None), default=None)


def _record(found: Record | bytes) -> Record:
    return orjson.loads(found) if isinstance(found, bytes) else found


async def _quietly(aw: Any) -> None:
    try:
        await aw
    except Exception:  # background completion of an already-acknowledged write
        pass
