"""The object data path: a byte stream in, erasure-coded shards on nodes, and back.

Write: the body is cut into ``BLOCK_SIZE`` blocks; each block is hashed for the client
(MD5/checksums) in a worker thread, in order, then encoded into k+m shards and
BLAKE3-hashed in a second worker-thread call (beside the next block's digests), then
its shards go to k+m nodes picked by zone-aware rendezvous hashing on the block id. The
body keeps arriving meanwhile. A block counts as written once ``policy.write_quorum``
shards are durable (each node syncs its WAL before answering); failed slots are retried
once on the next nodes in rank and otherwise left empty for repair. At most
``PIPELINE`` blocks are being digested, encoded or sent, so memory is bounded per upload,
and all uploads of a gateway process share ``Backend.write_budget`` (gateway/budget.py),
so memory is bounded however many uploads arrive at once.

Read: the k data shards are asked first (their payloads are the block, which a GET
sends on as the buffers they arrived in, copying nothing); when one fails, or
has not answered within ``HEDGE_AFTER`` seconds (a hung node), parity shards are asked
too and any k of them decode the block. A read never returns bytes that failed their
BLAKE3 check: such a shard counts as missing.

Encryption at rest: with a ``Sealer`` (the object's data key), each block is sealed
(AES-256-GCM, its own random nonce) in the coding call, after the client digests and
before erasure coding, so shards hold ciphertext only. Blocks are sealed
independently, so a range read opens only the blocks it covers. ``BlockRef.size`` stays
the plaintext size; the encoded payload is ``size + Sealer.overhead``.

Zones: a policy with ``zones >= 2`` places shards with ``spread.place_zoned`` (no zone
holds more than m shards of a block) and retries a failed slot only inside its own zone,
so a block is never acknowledged with a spread that a zone loss could break.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import TYPE_CHECKING

from cluster.nodeclient import NodeUnavailable, ShardMissing
from gateway.errors import S3Error
from gateway.records import BlockRef, ShardRef
from gateway.sealing import Sealer, SealError
from placement.codec import BLOCK_SIZE, NotEnoughShards, codec_for, shard_hash
from placement.hrw import Candidate, place, rank
from placement.policy import StoragePolicy
from placement.spread import SpreadError, place_zoned

if TYPE_CHECKING:
    from gateway.backend import Backend

log = logging.getLogger(__name__)

PIPELINE = 3  # blocks being digested, encoded or sent at once per upload
HEDGE_AFTER = 1.0  # seconds before parity is asked for beside slow data shards
HASH_CHARS = 32  # hex chars of BLAKE3 kept in records (128 bits)

Digest = Callable[[memoryview], None]
# Bytes read back, in order, as the buffers they arrived in (views into data shards),
# so that sending them on copies nothing.
Pieces = list[bytes | memoryview]


class Unavailable(S3Error):
    def __init__(self, message: str) -> None:
        super().__init__("ServiceUnavailable", message)


def _encode(policy: StoragePolicy, block: bytes,
            sealer: Sealer | None = None) -> list[tuple[bytes, str]]:
    """CPU work for one block after the client digests: sealing, erasure coding, shard
    hashes."""
    if sealer is not None:
        block = sealer.seal(block)
    shards = codec_for(policy).encode(block)
    return [(s, shard_hash(s)) for s in shards]


class BlockWriter:
    """Writes one object's (or part's) blocks; ``abort`` removes what was written."""

    def __init__(self, backend: Backend, policy: StoragePolicy,
                 sealer: Sealer | None = None) -> None:
        self.backend = backend
        self.policy = policy
        self.sealer = sealer
        self.blocks: list[BlockRef] = []
        self._inflight: list[asyncio.Future] = []
        self._digested: asyncio.Event | None = None  # set once the last block's digest ran

    async def write(self, chunks: AsyncIterator[bytes | memoryview],
                    digest: Digest | None = None) -> int:
        """Consume the stream; returns the byte count. Raises on any failure."""
        # Each block is made by one join of views of the received chunks: the one copy
        # the codec needs (pyeclib takes only bytes), and none for the carried-over tail.
        pending: list[memoryview] = []
        size = total = 0
        async for chunk in chunks:
            total += len(chunk)
            view = memoryview(chunk)
            while size + len(view) >= BLOCK_SIZE:
                need = BLOCK_SIZE - size
                pending.append(view[:need])
                await self._submit(b"".join(pending), digest)
                pending, size, view = [], 0, view[need:]
            if view:
                pending.append(view)
                size += len(view)
        if pending:
            await self._submit(b"".join(pending), digest)
        for task in self._inflight:
            await task
        self.blocks = [t.result() for t in self._inflight]
        return total

    async def _submit(self, block: bytes, digest: Digest | None) -> None:
        # Room first: at most PIPELINE blocks are being digested, encoded or sent.
        running = [t for t in self._inflight if not t.done()]
        if len(running) >= PIPELINE:
            await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
        for t in self._inflight:
            if t.done() and t.exception() is not None:
                raise t.exception()  # type: ignore[misc]
        # The body keeps arriving while this block is digested and encoded: awaiting that
        # here stalled the client for ~20 ms every 4 MiB. Digests must see blocks in
        # order, so each block's digest starts when the one before it has finished; the
        # coding runs beside the next block's digest.
        budget = self.backend.write_budget
        taken = await budget.acquire(len(block))
        previous, self._digested = self._digested, asyncio.Event()
        task = asyncio.ensure_future(self._store(block, digest, previous, self._digested))
        # A callback, not a ``finally`` in _store: abort() may cancel the task before it
        # ever ran, and then no line of the coroutine runs.
        task.add_done_callback(lambda _: budget.release(taken))
        self._inflight.append(task)

    async def _store(self, block: bytes, digest: Digest | None,
                     previous: asyncio.Event | None, digested: asyncio.Event) -> BlockRef:
        try:
            if previous is not None:
                await previous.wait()
            if digest is not None:
                await asyncio.to_thread(digest, memoryview(block))
        finally:
            digested.set()
        shards = await asyncio.to_thread(_encode, self.policy, block, self.sealer)
        size = len(block)
        del block  # the shards hold its bytes now; an upload's memory is what it sends
        return await self._send(size, shards)

    async def _send(self, size: int, shards: list[tuple[bytes, str]]) -> BlockRef:
        block_id = uuid.uuid4().hex
        nodes = self.backend.writable_nodes()
        if not nodes:
            raise Unavailable("no storage node is available")
        zoned = self.policy.zones > 1
        if zoned:
            try:
                picks = place_zoned(block_id.encode(), nodes, self.policy)
            except SpreadError as err:
                raise Unavailable(f"the live nodes cannot keep the bucket's zone "
                                  f"guarantee ({self.policy.zones} zones): {err}") from None
        else:
            picks = place(block_id.encode(), nodes, self.policy.width)
        ranked = rank(block_id.encode(), nodes)
        spares = [c for c in ranked if c not in picks]
        ref = BlockRef(id=block_id, size=size, shards=[None] * len(shards))

        def fallbacks(index: int) -> list[Candidate]:
            if zoned:  # only a spare in the same zone keeps the per-zone count
                return [c for c in spares if c.zone == picks[index].zone][:2]
            # A node outside the picks first; else double up on another pick, rotating
            # so two failed slots do not land on the same survivor.
            others = [c for c in picks[index + 1:] + picks[:index] if c != picks[index]]
            return (spares[index:] + spares[:index] + others)[:2]

        async def put(index: int) -> None:
            data, digest = shards[index]
            for cand in [picks[index], *fallbacks(index)]:
                api = self.backend.api_of(cand.name)
                if api is None:
                    continue
                try:
                    await self.backend.client.put_shard(api, f"{block_id}.{index}", data, digest)
                except NodeUnavailable:
                    continue
                ref.shards[index] = ShardRef(cand.name, digest[:HASH_CHARS])
                return

        await asyncio.gather(*(put(i) for i in range(len(shards))))
        written = sum(s is not None for s in ref.shards)
        if written < self.policy.write_quorum:
            self.blocks.append(ref)  # so abort() removes the shards that did land
            raise Unavailable(
                f"only {written} of {self.policy.width} shards could be written "
                f"(need {self.policy.write_quorum})"
            )
        return ref

    def abort(self) -> None:
        """Best-effort removal of everything this writer stored, in the background."""
        for t in self._inflight:
            if not t.done():
                t.cancel()
            elif not t.cancelled() and t.exception() is None:
                self.blocks.append(t.result())
        self.backend.spawn(delete_blocks(self.backend, list(self.blocks)))


async def delete_blocks(backend: Backend, blocks: list[BlockRef]) -> None:
    by_node: dict[str, list[str]] = {}
    for b in blocks:
        for i, s in enumerate(b.shards):
            if s is not None:
                by_node.setdefault(s.node, []).append(f"{b.id}.{i}")
    for node, ids in by_node.items():
        api = backend.api_of(node)
        if api is not None:
            with contextlib.suppress(NodeUnavailable, ShardMissing):
                await backend.client.delete_shards(api, ids)


async def read_block(backend: Backend, policy: StoragePolicy, block: BlockRef,
                     sealer: Sealer | None = None) -> bytes:
    """One block's plaintext from any k good shards, data shards first."""
    got = await _fetch_shards(backend, policy, block)
    return await _decoded(policy, got, block, sealer)


async def _read_block_pieces(backend: Backend, policy: StoragePolicy, block: BlockRef,
                             sealer: Sealer | None = None) -> Pieces:
    """``read_block``, but when the data shards came the block is returned as views into
    them: at 800 MiB/s of GETs, joining them (a thread hop and a 4 MiB copy per block)
    was 12 % of the gateway's CPU."""
    got = await _fetch_shards(backend, policy, block)
    if sealer is None and len(got) >= policy.read_need:  # else _decoded reports it
        views = codec_for(policy).data_views(got, block.size)
        if views is not None:
            return views
    return [await _decoded(policy, got, block, sealer)]


async def _fetch_shards(backend: Backend, policy: StoragePolicy, block: BlockRef
                        ) -> dict[int, bytes]:
    """Any k good shards of a block (fewer when not enough are reachable), data first."""
    k = policy.read_need
    got: dict[int, bytes] = {}
    running: dict[asyncio.Future, int] = {}

    failed_fast: list[int] = []  # skipped: the node is failed in gossip or marked down
    forced = False

    def ask(indices: range | list[int], force: bool = False) -> None:
        for index in indices:
            ref = block.shards[index]
            api = backend.api_of(ref.node) if ref is not None else None
            if ref is not None and api is not None:
                if not force and backend.suspect(ref.node, api):
                    failed_fast.append(index)
                    continue
                call = backend.client.get_shard(api, f"{block.id}.{index}", ref.hash, force)
                running[asyncio.ensure_future(call)] = index

    ask(range(min(k, len(block.shards))))
    parity_asked = False
    try:
        while len(got) < k:
            if not parity_asked and (not running or len(got) + len(running) < k):
                parity_asked = True
                ask(range(k, len(block.shards)))
            if not forced and len(got) + len(running) < k and failed_fast:
                forced = True  # last resort: nodes marked down may have recovered
                ask(failed_fast, force=True)
            if not running:
                break
            timeout = None if parity_asked else HEDGE_AFTER
            done, _ = await asyncio.wait(
                running, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:  # data shards are slow: a hung node; hedge with parity
                parity_asked = True
                ask(range(k, len(block.shards)))
            for t in done:
                index = running.pop(t)
                if t.exception() is None:
                    got[index] = t.result()
                elif not isinstance(t.exception(), (NodeUnavailable, ShardMissing)):
                    log.warning("shard %s.%d read failed: %r", block.id, index, t.exception())
    finally:
        for t in running:
            t.cancel()
    return got


async def _decoded(policy: StoragePolicy, got: dict[int, bytes], block: BlockRef,
                   sealer: Sealer | None) -> bytes:
    try:
        return await asyncio.to_thread(_decode, policy, got, block.size, sealer)
    except NotEnoughShards:
        raise Unavailable(
            f"block {block.id}: {len(got)} of {policy.read_need} needed shards are reachable"
        ) from None
    except SealError:
        raise S3Error("InternalError", f"block {block.id} failed its authentication "
                      "check on decryption") from None


def _decode(policy: StoragePolicy, shards: dict[int, bytes], size: int,
            sealer: Sealer | None) -> bytes:
    if sealer is None:
        return codec_for(policy).decode(shards, size)
    return sealer.unseal(codec_for(policy).decode(shards, size + sealer.overhead))


async def read_part(
    backend: Backend, policy: StoragePolicy, block: BlockRef, lo: int, hi: int,
    sealer: Sealer | None = None,
) -> Pieces:
    """Bytes [lo, hi) of one block. A range inside the block fetches only the data
    shards it covers (a 64 KiB read of a 4+2 block moves one 1 MiB shard, not four);
    when one of them is missing or slow, the whole block is read the hedged way. A
    sealed (encrypted) block is authenticated as a whole, so it is always read whole."""
    codec = codec_for(policy)
    slices = codec.data_slices(block.size)
    needed = [i for i, (a, b) in enumerate(slices) if a < hi and b > lo]
    located = [_locate(backend, block, i) for i in needed]
    if sealer is None and len(needed) < len(slices) and all(located):
        try:
            # Only the covered bytes of each shard (and its fragment header) travel: the
            # node checks the whole shard's hash before it sends them.
            fetched = await asyncio.wait_for(asyncio.gather(*(
                backend.client.get_shard(api, f"{block.id}.{i}", ref.hash,
                                         spans=codec.payload_spans(i, block.size, lo, hi))
                for i, (api, ref) in zip(needed, located, strict=True))), HEDGE_AFTER)
            return [codec.payload_of_spans(i, got, block.size)
                    for i, got in zip(needed, fetched, strict=True)]
        except (NodeUnavailable, ShardMissing, ValueError, TimeoutError):
            pass  # fall through to the whole-block read, which uses parity
    return _cut(await _read_block_pieces(backend, policy, block, sealer), lo, hi)


def _cut(pieces: Pieces, lo: int, hi: int) -> Pieces:
    """Bytes [lo, hi) of ``pieces``, as views."""
    out: Pieces = []
    offset = 0
    for piece in pieces:
        a, b = max(lo, offset) - offset, min(hi, offset + len(piece)) - offset
        if a < b:
            out.append(piece if (a, b) == (0, len(piece)) else memoryview(piece)[a:b])
        offset += len(piece)
    return out


def _locate(backend: Backend, block: BlockRef, index: int) -> tuple[str, ShardRef] | None:
    """(node API, shard ref) of a shard on a healthy node; None when it is not."""
    ref = block.shards[index]
    api = backend.api_of(ref.node) if ref is not None else None
    if ref is None or api is None or backend.suspect(ref.node, api):
        return None
    return api, ref


async def read_range(
    backend: Backend, policy: StoragePolicy, blocks: list[BlockRef], start: int, end: int,
    sealer: Sealer | None = None,
) -> AsyncGenerator[Pieces, None]:
    """Bytes [start, end) of an object, the pieces of one block at a time; the next block
    is fetched ahead while the gateway's read-ahead budget has room (gateway/budget.py),
    and its bytes count there until the caller comes back for the block after it."""
    offset = 0
    wanted: list[tuple[BlockRef, int, int]] = []
    for b in blocks:
        lo, hi = max(start, offset), min(end, offset + b.size)
        if lo < hi:
            wanted.append((b, lo - offset, hi - offset))
        offset += b.size
    budget = backend.read_ahead
    ahead: asyncio.Task | None = None
    ahead_taken = current_taken = 0
    try:
        for i, (b, lo, hi) in enumerate(wanted):
            if ahead is None:
                current = asyncio.ensure_future(read_part(backend, policy, b, lo, hi, sealer))
            else:
                current, current_taken = ahead, ahead_taken
            ahead, ahead_taken = None, 0
            if i + 1 < len(wanted):
                nb, nlo, nhi = wanted[i + 1]
                taken = budget.try_acquire(nhi - nlo)
                if taken is not None:
                    ahead_taken = taken
                    ahead = asyncio.ensure_future(
                        read_part(backend, policy, nb, nlo, nhi, sealer))
            yield await current
            budget.release(current_taken)  # the caller is done with that block
            current_taken = 0
    finally:
        if ahead is not None and not ahead.done():
            ahead.cancel()
        budget.release(ahead_taken + current_taken)


async def flat_pieces(stream: AsyncIterator[Pieces]) -> AsyncGenerator[bytes | memoryview, None]:
    """The pieces of ``read_range``'s blocks one by one, in order."""
    async for pieces in stream:
        for piece in pieces:
            yield piece
