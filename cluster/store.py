"""One RocksDB per storage node: erasure-coded shards and replicated metadata records.

Layout (rocksdict, raw mode, bytes keys and values):

* column family ``shards``: key = shard id (ascii), value = 32-byte raw BLAKE3 digest of
  the shard followed by the shard bytes. Blob files are on, so large shards live outside
  the LSM tree and compaction does not rewrite them.
* column family ``shard_hashes``: key = shard id, value = the same 32-byte digest, written
  and deleted in the same batch as the shard. Listing shard ids (GC, scrub) and reading a
  shard's hash (repair's health checks) use it: any access to a blob-file value reads the
  whole value. A DB from before this index gets it built when it is opened.
* column family ``shard_chunks``: key = shard id, value = the BLAKE3 digests (32 bytes
  each) of the shard's 64 KiB chunks. Built by the first span read of a shard, from bytes
  that passed the whole-shard hash, so later span reads hash only the chunks they return
  (a 64 KiB range of a 1 MiB shard: ~0.03 ms instead of 0.35). Not synced: a lost entry
  is rebuilt by the next span read. Deleted and rewritten with the shard. Span reads of a
  shard read lately are served from memory (``cluster/hotshards.py``).
* column family ``meta``: key = record key as utf-8 (so byte order is S3 listing order),
  value = the record as compact JSON. Every record carries ``"hlc": [physical_ms, logical,
  origin]``; deletes are ordinary records with ``"deleted": true`` (tombstones).
* default column family, ``purged:{partition}``: the partition's *purge mark*, a physical
  ms. Tombstones this old are purged (``meta_purge``) once every owner holds them, and a
  record at most this old for a key the node lacks is refused (``meta_put``): it can only
  be a copy of something deleted before the mark (cluster/antientropy.py, "Tombstones").

Durability: a write is acknowledged (its coroutine returns) only after RocksDB synced the
WAL holding it. rocksdict holds the GIL, so DB calls that can take long (shard reads,
scans, writes) run on the store's ONE worker thread, while small point reads (records,
shard hashes) run on the event loop, where they cost less than a thread hop; concurrent
writes are group-committed -- one synced ``WriteBatch`` per group --
because a sync costs about as much for a hundred puts as for one.

Ordering: writes are applied in the order their coroutines called the store, and a read
issued after a write returned sees it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from hashlib import blake2b
from pathlib import Path
from typing import Any, TypeVar

import blake3
import orjson
import rocksdict

from cluster import rocksdbcrc
from cluster.changes import MetaChanges
from cluster.dboptions import DBOptions
from cluster.hlc import hlc_of, newer
from cluster.hotshards import HotShards
from cluster.layout import partition_of
from cluster.nodeauth import content_hash

T = TypeVar("T")
log = logging.getLogger(__name__)

# On import, before this process opens a DB: it rewrites code that RocksDB threads run.
rocksdbcrc.accelerate()

_DIGEST_LEN = 32
_CHUNK = 64 * 1024  # span reads check the shard in chunks of this size
_HEX64 = re.compile(r"[0-9a-f]{64}")
_GROUP_WINDOW = 0.001  # seconds a group keeps collecting while writers keep arriving
_GROUP_MAX_OPS = 512
_GROUP_MAX_BYTES = 16 << 20  # bounds a group's memory and its sync latency
DIGEST_CACHE = 4096  # cached digest answers; a few per partition and peer
# Blob files are rewritten (live shards copied out, the garbage dropped) once garbage is
# this share of their bytes and at least BLOB_GARBAGE_MIN: each rewritten byte then frees
# at least a third of a byte, and small stores are left alone.
BLOB_GARBAGE_RATIO = 0.25
BLOB_GARBAGE_MIN = 256 << 20


class CorruptShard(Exception):
    """The stored shard bytes do not match the BLAKE3 hash stored with them."""


class StoreClosed(RuntimeError):
    """The store is closed (the node is stopping): it takes no new reads or writes."""


def _column_families(path: Path) -> list[str]:
    """Column families of the DB at ``path``; none when there is no DB there yet."""
    if not (path / "CURRENT").exists():
        return []
    return rocksdict.Rdict.list_cf(str(path), rocksdict.Options(raw_mode=True))


# In the default column family: the meta_clocks index is complete (a build cut short by a
# crash is redone at the next open; it only rewrites the same values).
_CLOCKS_INDEXED = b"indexed:meta_clocks"
_PURGED = b"purged:"  # + partition: the partition's purge mark (physical ms, ascii)


def _clock(record: dict) -> bytes:
    """A record's hlc as anti-entropy digests it (kept in ``meta_clocks`` beside the
    record, so a digest reads no record: decoding each one was the whole cost of a pass,
    ~10 µs per small record and 40 µs per 16-block one, four times per copy per pass)."""
    return json.dumps(record.get("hlc")).encode()


def _range_iter(cf: rocksdict.Rdict, lo: bytes, hi: bytes
                ) -> tuple[rocksdict.RdictIter, rocksdict.ReadOptions]:
    """An iterator over [lo, hi) of a column family (hi empty: unbounded), at ``lo``, and
    its options: keep both while iterating (the upper bound lives in the options), and
    drop the iterator before returning (a live one keeps the DB lock after close())."""
    ro = rocksdict.ReadOptions()
    if hi:
        ro.set_iterate_upper_bound(hi)
    it = cf.iter(ro)
    it.seek(lo)
    return it, ro


def _chunk_digest(data: memoryview, index: int) -> bytes:
    """BLAKE3 of the shard's ``index``-th chunk, as ``shard_chunks`` keeps it."""
    return blake3.blake3(data[index * _CHUNK:(index + 1) * _CHUNK]).digest()


_TOMBSTONE = b'"deleted":true'  # how a stored tombstone's JSON reads (orjson, compact)
_TAIL = -64  # where meta_scan_live looks for it


def is_tombstone(raw: bytes) -> bool:
    """Whether a stored record is a tombstone, without decoding it (decoding tripled the
    cost of skipping tombstones). Exact for our records: "deleted" is a boolean only at
    the top level, and inside a JSON string its quotes would be escaped."""
    return _TOMBSTONE in raw


def _encode(record: dict) -> bytes:
    """A record as stored: JSON (orjson, because every scan decodes them), with an inline
    body as its last field, so that scans can cut it off without decoding the record
    (cluster/nodeapp.py, ``without_inline``)."""
    if record.get("inline") is not None and next(reversed(record)) != "inline":
        record = dict(record)
        record["inline"] = record.pop("inline")
    return orjson.dumps(record)


@dataclass
class _WriteOp:
    """One caller's write; ``apply`` adds it to the group's batch and returns its result."""

    apply: Callable[[rocksdict.WriteBatch, dict[bytes, dict]], Any]
    size: int
    future: asyncio.Future = field(repr=False)
    # Runs on the loop once the batch is durable, even if the caller has gone away.
    committed: Callable[[Any], None] | None = None


class NodeStore:
    """The node's RocksDB. Open in ``__init__``; ``start`` in the event loop before use."""

    def __init__(self, path: Path) -> None:
        """Open or create the DB at ``path``; raises if another process holds its lock."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._options = DBOptions(path)  # kept: RocksDB uses its block cache
        existing = _column_families(path)
        self._db = rocksdict.Rdict(str(path), self._options.db,
                                   column_families=self._options.column_families())
        self._shards = self._db.get_column_family("shards")
        self._hashes = self._db.get_column_family("shard_hashes")
        self._meta = self._db.get_column_family("meta")
        self._shards_cf = self._db.get_column_family_handle("shards")
        self._hashes_cf = self._db.get_column_family_handle("shard_hashes")
        self._meta_cf = self._db.get_column_family_handle("meta")
        self._clocks = self._db.get_column_family("meta_clocks")
        self._clocks_cf = self._db.get_column_family_handle("meta_clocks")
        self._chunks = self._db.get_column_family("shard_chunks")
        self._chunks_cf = self._db.get_column_family_handle("shard_chunks")
        self._sync = rocksdict.WriteOptions()
        self._sync.sync = True
        # Shard bytes carry their own BLAKE3, checked on every read; RocksDB's blob
        # checksum on top cost 0.95 of the 1.15 ms a 1 MiB shard read took (measured).
        self._shard_read = rocksdict.ReadOptions()
        self._shard_read.set_verify_checksums(False)
        self._hot = HotShards()
        if "shard_hashes" not in existing:
            self._index_shards()
        if self._db.get(_CLOCKS_INDEXED) is None:  # new DB, older DB, or a cut-short build
            self._index_clocks()
        self._purged = self._read_purge_marks()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nodestore")
        # Compactions run here: they take seconds and release the GIL, but must not hold
        # up the writer thread.
        self._maintenance = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nodestore-mt")
        self._queue: asyncio.Queue[_WriteOp | None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        # Group-commit counters (ops acknowledged, synced batches written): observability.
        self.committed_ops = 0
        self.commit_groups = 0
        self.changes = MetaChanges()
        # Partitions that took a tombstone since anti-entropy last looked for some to purge.
        self.tombstoned: set[str | None] = set()
        # bounds -> (changes.generation, digests): an idle node's peers ask for the same
        # ranges' digests every sync pass, and nothing changed in between.
        self._digests: dict[tuple[str, ...], tuple[int, list[tuple[int, str]]]] = {}

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the group-commit writer in the running loop (idempotent)."""
        if self._writer is None:
            self._queue = asyncio.Queue()
            self._writer = asyncio.create_task(self._write_loop(), name="nodestore-writer")

    async def close(self) -> None:
        """Finish queued writes, then close the DB and release its lock."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None and self._queue is not None:
            self._queue.put_nowait(None)
            await self._writer
        await asyncio.get_running_loop().run_in_executor(
            None, self._maintenance.shutdown, True)
        # Reads queued before this point run first (one thread, in order); _run refuses
        # any after it.
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close_db)
        self._executor.shutdown(wait=True)

    def _close_db(self) -> None:
        # Every handle keeps RocksDB (and its lock) alive; iterators are never kept past
        # the call that made them, so dropping these is enough.
        del self._shards_cf, self._hashes_cf, self._meta_cf, self._clocks_cf, self._chunks_cf
        del self._shards, self._hashes, self._meta, self._clocks, self._chunks
        self._db.close()
        del self._db

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed("the store is closed")

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        self._check_open()
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # -- group commit ------------------------------------------------------------------------

    async def _submit(self, apply: Callable[..., Any], size: int,
                      committed: Callable[[Any], None] | None = None) -> Any:
        if self._queue is None or self._closed:
            raise StoreClosed("NodeStore is not started or already closed")
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_WriteOp(apply, size, fut, committed))
        return await fut

    async def _write_loop(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            group, size = [first], first.size
            deadline = loop.time() + _GROUP_WINDOW
            while len(group) < _GROUP_MAX_OPS and size < _GROUP_MAX_BYTES:
                if self._queue.empty():
                    # Let writers that are ready to run enqueue, but do not wait for ones
                    # that are not: a lone writer pays no added latency.
                    await asyncio.sleep(0)
                    if self._queue.empty() or loop.time() > deadline:
                        break
                op = self._queue.get_nowait()
                if op is None:
                    stopping = True
                    break
                group.append(op)
                size += op.size
            try:
                results = await self._run(self._commit, group)
            except Exception as exc:  # the worker itself failed: fail the group, keep going
                results = [exc] * len(group)
            for op, res in zip(group, results, strict=True):
                if op.committed is not None and not isinstance(res, BaseException):
                    op.committed(res)
                if op.future.done():  # caller gone; the write still happened
                    continue
                if isinstance(res, BaseException):
                    op.future.set_exception(res)
                else:
                    op.future.set_result(res)

    def _commit(self, group: list[_WriteOp]) -> list[Any]:
        """Worker thread: build one batch from the group, write it synced."""
        batch = rocksdict.WriteBatch(raw_mode=True)
        overlay: dict[bytes, dict] = {}  # meta records written earlier in this batch
        results: list[Any] = []
        for op in group:
            try:
                results.append(op.apply(batch, overlay))
            except Exception as exc:  # reported to that caller only
                results.append(exc)
        try:
            if not batch.is_empty():
                self._db.write(batch, self._sync)
                self.commit_groups += 1
                self.committed_ops += len(group)
        except Exception as exc:  # the whole group failed: nothing was acknowledged
            return [exc] * len(group)
        return results

    # -- shards ---------------------------------------------------------------------------

    async def put_shard(self, shard_id: str, data: bytes, blake3_hex: str) -> None:
        """Store a shard under its BLAKE3 hex hash; durable when this returns.

        The hash is trusted (the node API checked it against the body); a wrong one is
        caught on every later read as ``CorruptShard``.
        """
        if not _HEX64.fullmatch(blake3_hex):
            raise ValueError("blake3_hex must be 64 lower-case hex digits")
        value = bytes.fromhex(blake3_hex) + data
        key = shard_id.encode()

        def apply(batch: rocksdict.WriteBatch, _overlay: dict) -> None:
            batch.put(key, value, self._shards_cf)
            batch.put(key, value[:_DIGEST_LEN], self._hashes_cf)
            batch.delete(key, self._chunks_cf)

        await self._submit(apply, len(value), lambda _: self._hot.forget([key]))

    async def get_shard(self, shard_id: str) -> bytes | None:
        """The shard's bytes, None if absent; raises ``CorruptShard`` on a hash mismatch."""
        found = await self.get_shard_with_hash(shard_id)
        return None if found is None else found[0]

    async def get_shard_with_hash(
        self, shard_id: str, spans: list[tuple[int, int]] | None = None, verify: bool = True
    ) -> tuple[bytes, str] | None:
        """(bytes, BLAKE3 hex) of a shard, None if absent; may raise CorruptShard.
        ``spans``: only those byte ranges of the shard, joined, each checked by the digests
        of the 64 KiB chunks under it (the first span read of a shard checks it whole and
        records them); served from memory when the shard is hot (``cluster/hotshards.py``).
        ValueError if a span passes the shard's end. ``verify=False`` skips the check of a
        whole shard for a reader that checks the bytes itself."""
        if spans is None:
            return await self._run(self._read, shard_id, verify)
        key = shard_id.encode()
        hot = self._hot.get(key)
        if hot is not None:
            return self._cut(key, *hot, spans)
        generation = self._hot.generation
        found = await self._run(self._read_for_spans, key)
        if found is None:
            return None
        cut = self._cut(key, *found, spans)
        self._hot.offer(key, *found, generation)
        return cut

    def _stored(self, key: bytes) -> bytes | None:
        """A shard's stored value (digest, then bytes), None if absent."""
        value = self._shards.get(key, read_opt=self._shard_read)
        if value is not None and len(value) < _DIGEST_LEN:
            raise CorruptShard(key.decode())
        return value

    def _read(self, shard_id: str, verify: bool) -> tuple[bytes, str] | None:
        # Read and hash in one thread hop: a hop cost ~0.3 ms of CPU here (measured), as
        # much as hashing the 1 MiB shard itself.
        value = self._stored(shard_id.encode())
        if value is None:
            return None
        stored = value[:_DIGEST_LEN].hex()
        data = memoryview(value)[_DIGEST_LEN:]
        if verify and content_hash(data) != stored:
            raise CorruptShard(shard_id)
        return bytes(data), stored

    def _read_for_spans(self, key: bytes) -> tuple[bytes, bytes] | None:
        """(stored value, chunk digests); the first span read of a shard checks it whole
        and records the digests of its chunks."""
        value = self._stored(key)
        if value is None:
            return None
        data = memoryview(value)[_DIGEST_LEN:]
        count = -(-len(data) // _CHUNK)
        digests = self._chunks.get(key)
        if digests is None or len(digests) != count * _DIGEST_LEN:
            if content_hash(data) != value[:_DIGEST_LEN].hex():
                raise CorruptShard(key.decode())
            digests = b"".join(_chunk_digest(data, i) for i in range(count))
            self._chunks[key] = digests  # (this thread also commits: no race with a delete)
        return value, digests

    @staticmethod
    def _cut(key: bytes, value: bytes, digests: bytes,
             spans: list[tuple[int, int]]) -> tuple[bytes, str]:
        """The spans of a shard, joined, after checking the chunks under them."""
        data = memoryview(value)[_DIGEST_LEN:]
        if any(b > len(data) for _, b in spans):
            raise ValueError("span past the end of the shard")
        chunks = {i for a, b in spans if b > a for i in range(a // _CHUNK, (b - 1) // _CHUNK + 1)}
        for i in chunks:
            if _chunk_digest(data, i) != digests[i * _DIGEST_LEN:(i + 1) * _DIGEST_LEN]:
                raise CorruptShard(key.decode())
        return b"".join(data[a:b] for a, b in spans), value[:_DIGEST_LEN].hex()

    async def delete_shards(self, shard_ids: list[str]) -> None:
        """Delete shards (absent ids are fine); durable when this returns."""
        keys = [s.encode() for s in shard_ids]

        def apply(batch: rocksdict.WriteBatch, _overlay: dict) -> None:
            for key in keys:
                batch.delete(key, self._shards_cf)
                batch.delete(key, self._hashes_cf)
                batch.delete(key, self._chunks_cf)

        if keys:
            await self._submit(apply, 0, lambda _: self._hot.forget(keys))

    async def reclaim_blob_space(self, ratio: float = BLOB_GARBAGE_RATIO,
                                 minimum: int = BLOB_GARBAGE_MIN) -> dict:
        """Rewrite the blob files once deleted shards are ``ratio`` of their bytes and at
        least ``minimum`` bytes; returns the blob and garbage bytes before and after."""
        self._check_open()
        return await asyncio.get_running_loop().run_in_executor(
            self._maintenance, self._reclaim_blob_space, ratio, minimum)

    def _reclaim_blob_space(self, ratio: float, minimum: int) -> dict:
        # RocksDB counts a blob as garbage only when a compaction drops the key naming it.
        # This one flushes the memtable and rewrites only the small table files (blob GC
        # is off): ~40 bytes per shard.
        whole = rocksdict.CompactOptions()
        whole.set_bottommost_level_compaction(rocksdict.BottommostLevelCompaction.force())
        self._shards.compact_range(None, None, whole)
        before = self._blob_bytes()
        out = {"blob_bytes": before[0], "garbage_bytes": before[1], "rewritten": False}
        if before[1] < max(minimum, ratio * before[0]):
            return out
        self._shards.set_options({"enable_blob_garbage_collection": "true",
                                  "blob_garbage_collection_age_cutoff": "1.0"})
        try:
            self._shards.compact_range(None, None, whole)
        finally:
            self._shards.set_options({"enable_blob_garbage_collection": "false"})
        after = self._blob_bytes()
        log.info("blob files rewritten: %d -> %d bytes", before[0], after[0])
        return {**out, "rewritten": True, "blob_bytes_after": after[0],
                "garbage_bytes_after": after[1]}

    def _blob_bytes(self) -> tuple[int, int]:
        sh = self._shards
        return (sh.property_int_value("rocksdb.live-blob-file-size") or 0,
                sh.property_int_value("rocksdb.live-blob-file-garbage-size") or 0)

    async def shard_hash(self, shard_id: str) -> str | None:
        """The stored BLAKE3 hex of a shard without reading or checking its bytes."""

        self._check_open()
        digest = self._hashes.get(shard_id.encode())  # 32 bytes: no thread hop
        return None if digest is None else digest.hex()

    async def shard_ids(self, after: str, limit: int) -> list[str]:
        """Up to ``limit`` shard ids greater than ``after``, in byte order (keys only)."""

        def scan() -> list[str]:
            # The hash index, not the shards: an iterator over blob-file values reads
            # (and checksums) every value it passes, 1 MiB per shard.
            it = self._hashes.iter()
            try:
                it.seek(after.encode())
                out: list[str] = []
                while it.valid() and len(out) < limit:
                    key = it.key().decode()
                    if key != after:
                        out.append(key)
                    it.next()
                return out
            finally:
                del it

        return await self._run(scan)

    def _index_shards(self) -> None:
        """Fill ``shard_hashes`` from the shards of a DB made before that index existed."""
        count = self._fill_index(self._shards.iter(self._shard_read), self._hashes_cf,
                                 lambda value: value[:_DIGEST_LEN])
        if count:
            log.info("indexed the hashes of %d stored shards", count)

    def _index_clocks(self) -> None:
        """Fill ``meta_clocks`` from the records of a DB made before that index existed."""
        count = self._fill_index(self._meta.iter(), self._clocks_cf,
                                 lambda value: _clock(orjson.loads(value)))
        self._db.put(_CLOCKS_INDEXED, b"1", self._sync)
        if count:
            log.info("indexed the clocks of %d stored records", count)

    def _fill_index(self, it: Any, cf: Any, value_of: Callable[[bytes], bytes]) -> int:
        """Put ``value_of(value)`` under every key ``it`` yields into ``cf``, in synced
        batches of 1000; the number of keys."""
        try:
            it.seek_to_first()
            batch, count = rocksdict.WriteBatch(raw_mode=True), 0
            while it.valid():
                batch.put(it.key(), value_of(it.value()), cf)
                count += 1
                if count % 1000 == 0:
                    self._db.write(batch, self._sync)
                    batch = rocksdict.WriteBatch(raw_mode=True)
                it.next()
            self._db.write(batch, self._sync)
        finally:
            del it  # a live iterator would keep the DB lock after close()
        return count

    # -- metadata -------------------------------------------------------------------------

    async def meta_put(self, items: list[tuple[str, dict]]) -> list[bool]:
        """Apply records last-writer-wins; return which ones replaced the stored record.

        The call is one synced WriteBatch: atomic on this node. ValueError (nothing
        written) if a record lacks a well-formed hlc or a key is not encodable. A record
        for a key this node lacks, no newer than the partition's purge mark, is refused:
        it is a stale copy of something deleted and purged.
        """
        prepared = []
        for key, record in items:
            hlc_of(record)
            prepared.append((key.encode(), record, _encode(record), partition_of(key)))

        def apply(batch: rocksdict.WriteBatch, overlay: dict[bytes, dict]) -> list[bool]:
            keys = [k for k, _, _, _ in prepared]
            stored = self._meta.get(keys) if keys else []
            current = {k: overlay.get(k) for k in keys}
            for k, raw in zip(keys, stored, strict=True):
                if current[k] is None and raw is not None:
                    current[k] = orjson.loads(raw)
            applied = []
            for k, record, raw, part in prepared:
                win = newer(record, current[k]) and (
                    current[k] is not None or record["hlc"][0] > self._purged.get(part, -1))
                if win:
                    current[k] = record
                    batch.put(k, raw, self._meta_cf)
                    batch.put(k, _clock(record), self._clocks_cf)
                applied.append(win)
            for k in keys:
                overlay[k] = current[k]
            return applied

        if not prepared:
            return []
        def committed(applied: list[bool]) -> None:
            won = [(k, r) for (k, r), win in zip(items, applied, strict=True) if win]
            self.changes.record(k for k, _ in won)
            self.tombstoned.update(partition_of(k) for k, r in won if r.get("deleted"))

        return await self._submit(apply, sum(len(raw) for _, _, raw, _ in prepared), committed)

    async def meta_drop(self, items: list[tuple[str, tuple[int, int, str]]]) -> int:
        """Delete each record whose stored hlc is still the given one (a record written
        since is kept); returns how many were deleted. For copies a node no longer owns,
        once every owner holds them: not a client delete (that is a tombstone record)."""
        prepared = [(key.encode(), tuple(hlc)) for key, hlc in items]

        def apply(batch: rocksdict.WriteBatch, overlay: dict[bytes, dict]) -> int:
            return self._delete_current(batch, overlay, prepared, lambda _: True)

        if not prepared:
            return 0
        # Moves the digest generation: cached digests that counted these keys are stale.
        return await self._submit(apply, 0, lambda _: self.changes.record(()))

    def _delete_current(self, batch: rocksdict.WriteBatch, overlay: dict[bytes, dict],
                        prepared: list[tuple[bytes, tuple]],
                        also: Callable[[dict], bool]) -> int:
        """In ``batch``: delete each (key, hlc) whose record -- as this group left it, or
        as stored -- still has that hlc and passes ``also``; how many were deleted."""
        stored = self._meta.get([k for k, _ in prepared]) if prepared else []
        deleted = 0
        for (k, hlc), raw in zip(prepared, stored, strict=True):
            current = overlay[k] if k in overlay else raw and orjson.loads(raw)
            if current and hlc_of(current) == hlc and also(current):
                batch.delete(k, self._meta_cf)
                batch.delete(k, self._clocks_cf)
                overlay[k] = None  # type: ignore[assignment]
                deleted += 1
        return deleted

    # -- tombstone purge --------------------------------------------------------------------

    def _read_purge_marks(self) -> dict[str | None, int]:
        it = self._db.iter()
        try:
            it.seek(_PURGED)
            marks: dict[str | None, int] = {}
            while it.valid() and it.key().startswith(_PURGED):
                marks[it.key()[len(_PURGED):].decode()] = int(it.value())
                it.next()
            return marks
        finally:
            del it

    def purge_mark(self, partition: str) -> int:
        """The partition's purge mark (physical ms): tombstones up to it may be gone from
        this node; 0 when it never purged, or dropped its copies since."""
        return self._purged.get(partition, 0)

    def purge_marks(self, keys: list[str]) -> list[int]:
        """Each key's partition purge mark (0 for a key outside the layout)."""
        return [self._purged.get(partition_of(k), 0) for k in keys]

    async def meta_purge(self, partition: str, items: list[tuple[str, tuple[int, int, str]]],
                         mark: int) -> int:
        """Delete each tombstone of ``partition`` still stored with the given hlc, and
        raise the partition's purge mark to ``mark``, in one batch: no purged tombstone is
        ever below a mark that is not durable. Returns how many were deleted."""
        prepared = [(key.encode(), tuple(hlc)) for key, hlc in items]

        def purgeable(record: dict) -> bool:
            return (bool(record.get("deleted")) and not record.get("delete_marker")
                    and record["hlc"][0] <= mark)

        def apply(batch: rocksdict.WriteBatch, overlay: dict[bytes, dict]) -> int:
            purged = self._delete_current(batch, overlay, prepared, purgeable)
            if mark > self._purged.get(partition, 0):
                batch.put(_PURGED + partition.encode(), str(mark).encode())
            return purged

        def committed(_: int) -> None:
            self._purged[partition] = max(mark, self._purged.get(partition, 0))
            self.changes.record(())  # cached digests counted the purged keys

        return await self._submit(apply, 0, committed)

    async def compact_meta(self, ranges: list[tuple[str, str]]) -> None:
        """Compact the records and clocks in ``ranges``. RocksDB keeps a deleted key as a
        marker that every scan steps over until a compaction drops it: after a purge of
        10,000 tombstones a one-key listing took 15 ms instead of 9 until then."""
        self._check_open()

        def compact() -> None:
            for lo, hi in ranges:
                for cf in (self._meta, self._clocks):
                    cf.compact_range(lo.encode(), hi.encode())

        await asyncio.get_running_loop().run_in_executor(self._maintenance, compact)

    async def reset_purge_mark(self, partition: str) -> None:
        """Forget the partition's purge mark, before this node drops its copies: a node
        that holds none of a partition's records must not claim to have purged any."""

        def apply(batch: rocksdict.WriteBatch, _overlay: dict) -> None:
            batch.delete(_PURGED + partition.encode())

        if partition in self._purged:
            await self._submit(apply, 0, lambda _: self._purged.pop(partition, None))

    async def meta_get(self, keys: list[str]) -> list[dict | None]:
        """Stored records (tombstones included) in the order of ``keys``; None if absent."""
        return [None if raw is None else orjson.loads(raw) for raw in self.meta_get_raw(keys)]

    def meta_get_raw(self, keys: list[str]) -> list[bytes | None]:
        """``meta_get`` as the stored JSON bytes, for answers that pass records on as they
        are. On the loop: a few small point reads take microseconds (metadata stays in the
        block cache), a thread hop ~0.1-0.3 ms of CPU."""
        self._check_open()
        return self._meta.get([k.encode() for k in keys]) if keys else []

    async def meta_scan(
        self, start: str, end: str, limit: int
    ) -> tuple[list[tuple[str, dict]], bool]:
        """Records with keys in [start, end) in utf-8 byte order, at most ``limit``.

        An empty ``end`` means no upper bound. The bool is True when more keys remain in
        the range (continue from just after the last key returned).
        """
        items, more = await self.meta_scan_raw(start, end, limit)
        return [(k.decode(), orjson.loads(v)) for k, v in items], more

    async def meta_scan_raw(
        self, start: str, end: str, limit: int
    ) -> tuple[list[tuple[bytes, bytes]], bool]:
        """``meta_scan`` as stored: (key, record JSON) bytes, nothing decoded. Decoding a
        record (and what it allocates) was nine tenths of a 1000-record scan."""
        if limit < 0:
            raise ValueError("limit must be >= 0")
        lo, hi = start.encode(), end.encode()

        def scan() -> tuple[list[tuple[bytes, bytes]], bool]:
            it, _bound = _range_iter(self._meta, lo, hi)
            try:
                out: list[tuple[bytes, bytes]] = []
                while it.valid() and len(out) < limit:
                    out.append((it.key(), it.value()))
                    it.next()
                return out, it.valid()
            finally:
                del it  # a live iterator would keep the DB lock after close()

        return await self._run(scan)

    async def meta_scan_live(
        self, start: str, end: str, limit: int, budget: int
    ) -> tuple[list[tuple[bytes, bytes]], str | None]:
        """``meta_scan_raw`` without tombstones (delete markers included): at most ``limit``
        records, reading at most ``budget`` keys. Returns the records and, when keys may
        remain, the last key read -- past the last record when tombstones followed it.
        A listing need not ship deletes that every owner agrees on (see
        MetadataReplicator.scan); after a mass delete they were most of its cost."""
        lo, hi = start.encode(), end.encode()

        def scan() -> tuple[list[tuple[bytes, bytes]], str | None]:
            it, _bound = _range_iter(self._meta, lo, hi)
            try:
                out: list[tuple[bytes, bytes]] = []
                last = b""
                for _ in range(budget):
                    if not it.valid() or len(out) >= limit:
                        break
                    last, raw = it.key(), it.value()
                    # Only the tail, where every tombstone we write has its flag ("deleted"
                    # then "v"): half the cost of searching the whole record. A tombstone
                    # missed here is sent, and merged like any record.
                    if raw.find(_TOMBSTONE, _TAIL) < 0:
                        out.append((last, raw))
                    it.next()
                return out, last.decode() if it.valid() else None
            finally:
                del it

        return await self._run(scan)

    async def meta_cuts(self, start: str, end: str, every: int) -> list[str]:
        """Every ``every``-th key of [start, end) after the first (""-end: unbounded), read
        from the small ``meta_clocks`` index: bounds that cut a range into sub-ranges of
        ``every`` keys without reading its records (a large object's is kilobytes)."""
        lo, hi = start.encode(), end.encode()

        def cuts() -> list[str]:
            it, _bound = _range_iter(self._clocks, lo, hi)
            try:
                out, n = [], 0
                while it.valid():
                    if n and n % every == 0:
                        out.append(it.key().decode())
                    n += 1
                    it.next()
                return out
            finally:
                del it

        if every < 1:
            raise ValueError("every must be >= 1")
        return await self._run(cuts)

    async def meta_digests(self, bounds: list[str]) -> list[tuple[int, str]]:
        """(count, digest) of the records in each [bounds[i], bounds[i+1]); the last bound
        may be "" (no upper bound). The digest covers every key and its record's hlc, so two
        stores agree on a range exactly when they hold the same versions of the same keys.
        Anti-entropy compares these instead of shipping records. Answers are cached until
        the next applied write (``changes.generation``)."""
        generation, cached = self.changes.generation, self._digests.get(tuple(bounds))
        if cached is not None and cached[0] == generation:
            return cached[1]

        def digest() -> list[tuple[int, str]]:
            out = []
            for lo, hi in zip(bounds, bounds[1:], strict=False):
                it, _bound = _range_iter(self._clocks, lo.encode(), hi.encode())
                try:
                    h, n = blake2b(digest_size=16), 0
                    while it.valid():
                        h.update(it.key() + b"\0" + it.value() + b"\n")
                        n += 1
                        it.next()
                    out.append((n, h.hexdigest()))
                finally:
                    del it
            return out

        result = await self._run(digest)
        if len(self._digests) >= DIGEST_CACHE:
            self._digests.clear()
        self._digests[tuple(bounds)] = (generation, result)
        return result

    # -- statistics -----------------------------------------------------------------------

    def stats(self) -> dict:
        """Estimates from RocksDB properties: shard count and bytes, metadata key count;
        and the size and free bytes of the file system the DB is on."""
        self._check_open()
        sh = self._shards
        disk = shutil.disk_usage(self._path)
        shard_bytes = sum(
            sh.property_int_value(p) or 0
            for p in (
                "rocksdb.live-sst-files-size",
                "rocksdb.live-blob-file-size",
                "rocksdb.cur-size-all-mem-tables",
            )
        )
        return {
            "shards": sh.property_int_value("rocksdb.estimate-num-keys") or 0,
            "bytes": shard_bytes,
            "meta_keys": self._meta.property_int_value("rocksdb.estimate-num-keys") or 0,
            "disk_bytes": disk.total,
            "disk_free": disk.free,
        }

    async def astats(self) -> dict:
        """``stats`` run on the store's worker thread, for async callers."""
        return await self._run(self.stats)
