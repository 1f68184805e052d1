"""The one HTTP client that gateways and peers use to reach storage nodes.

Every request is signed with the cluster secret (``cluster.nodeauth``), re-signed on each
attempt so it never trips the node's replay check.

Failure model, which callers rely on:

* ``NodeUnavailable`` -- the node could not serve the call: connection refused or reset,
  timeout, 5xx, or the node is marked down. ``NodeRejected`` (a subclass) is a 4xx the
  node gave for a request it would not accept (bad signature or clock skew: 403; malformed:
  400); callers that fall back to another node on ``NodeUnavailable`` therefore also fall
  back from a node that refuses them.
* ``ShardMissing`` -- the node answered, but does not have the shard (404) or the shard is
  corrupt (409, or the bytes received do not match their hash): ``.corrupt`` tells which.

Circuit breaker: after a connection failure or a timeout, the node's base URL is marked
down for ``down_cooldown`` seconds and calls to it fail at once with ``NodeUnavailable`` --
a hung (SIGSTOPped) node costs one timeout, not one per request. When the cooldown ends,
one call probes the node while the others keep failing fast; any HTTP answer below 500
clears the mark, another failure renews it.

Retries: every node API operation is idempotent, so a request whose pooled keep-alive
connection turned out to be closed by the node is retried once on a fresh connection
(``cluster.httppool``).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import orjson

from cluster import recordframes
from cluster.coalesce import Coalescer
from cluster.httppool import ConnectionLost, HttpPool
from cluster.nodeauth import content_hash, content_hash_async, sign


class NodeUnavailable(Exception):
    """The node could not serve the call (refused, timeout, 5xx, or marked down)."""


class NodeRejected(NodeUnavailable):
    """The node refused the request with a 4xx (403 auth/clock skew, 400 malformed)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"node refused the request: {status} {message}")
        self.status = status


class ShardMissing(Exception):
    """The node has no good copy of the shard: absent (404) or corrupt (``corrupt``)."""

    def __init__(self, message: str, corrupt: bool = False) -> None:
        super().__init__(message)
        self.corrupt = corrupt


@dataclass(frozen=True)
class ScanLines:
    """A framed ``meta/scan`` answer as received: two owners holding the same records
    answer the same bytes, so a caller compares answers before decoding one."""

    body: bytes  # lines alternating a JSON key and a record's JSON
    truncated: bool
    last: str | None = None  # live-only scans, truncated: the last key the owner read

    def horizon(self) -> str | None:
        """When truncated, the last key this owner has shown to be complete up to."""
        if not self.truncated:
            return None
        if self.last is not None:
            return self.last
        lines = self.body.rsplit(b"\n", 2)
        return orjson.loads(lines[-2]) if len(lines) >= 2 else None

    def pairs(self) -> list[tuple[str, bytes]]:
        """(key, record JSON) pairs; the records are not decoded."""
        lines = self.body.split(b"\n") if self.body else []
        return list(zip(_json_values(lines[::2]), lines[1::2], strict=True))

    def records(self) -> list[tuple[str, dict]]:
        """(key, record) pairs, every line decoded."""
        flat = _json_values(self.body.split(b"\n")) if self.body else []
        return list(zip(flat[::2], flat[1::2], strict=True))


def _json_values(lines: list[bytes]) -> list:
    """Many JSON texts decoded in one orjson call: a line holds no raw newline and no
    trailing comma, so joined with commas inside brackets they are one JSON array
    (decoding a 1000-key page line by line was a sixth of a listing's gateway CPU)."""
    return orjson.loads(b"[" + b",".join(lines) + b"]")


class NodeClient:
    """Signed, pooled HTTP calls to storage nodes, with a per-node circuit breaker."""

    def __init__(
        self,
        secret: bytes,
        timeout: float = 5.0,
        connect_timeout: float = 1.0,
        down_cooldown: float = 2.0,
    ) -> None:
        self._secret = secret
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._cooldown = down_cooldown
        self._down_until: dict[str, float] = {}  # api -> monotonic time the mark expires
        self._probing: set[str] = set()
        self._refused: set[str] = set()  # marked down because nothing listened
        self._pool: HttpPool | None = None
        self._puts = Coalescer(self._meta_put_now)
        self._gets = Coalescer(self._meta_get_now)

    async def start(self) -> None:
        """Open the connection pool (idempotent)."""
        if self._pool is None:
            self._pool = HttpPool(self._timeout, self._connect_timeout)

    async def close(self) -> None:
        """Close the pool's idle connections; later calls fail until ``start``."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    # -- circuit breaker ----------------------------------------------------------------------

    def is_down(self, api: str) -> bool:
        """True while the node is marked down (its cooldown runs or a probe is in flight)."""
        until = self._down_until.get(api)
        if until is None:
            return False
        return time.monotonic() < until or api in self._probing

    def unmark_refused(self, apis: list[str]) -> bool:
        """Clear the marks of those ``apis`` that were marked down for a refused
        connection, for a caller with nobody else to ask: asking costs nothing while the
        node is still down, and a restarted node answers at once. (A node marked for a
        timeout stays marked: asking it again would cost another timeout.) Whether any
        mark was cleared."""
        cleared = [api for api in apis if api in self._refused]
        for api in cleared:
            self._refused.discard(api)
            self._down_until.pop(api, None)
        return bool(cleared)

    def _mark_down(self, api: str, refused: bool = False) -> None:
        self._down_until[api] = time.monotonic() + self._cooldown
        if refused:
            self._refused.add(api)
        else:
            self._refused.discard(api)

    def _admit(self, api: str) -> bool:
        """Whether a call may go out; True for a probe, which the caller must finish."""
        if api not in self._down_until:
            return False
        if self.is_down(api):
            raise NodeUnavailable(f"{api} is marked down")
        self._probing.add(api)
        return True

    # -- transport ------------------------------------------------------------------------

    async def _call(
        self,
        api: str,
        method: str,
        path: str,
        body: bytes = b"",
        body_hash: str | None = None,
        force: bool = False,
    ) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) of a response below 500; raises NodeUnavailable else."""
        if self._pool is None:
            raise RuntimeError("NodeClient.start() was not called")
        probe = False if force else self._admit(api)
        try:
            body_hash = body_hash if body_hash is not None else await content_hash_async(body)
            headers = functools.partial(sign, self._secret, method, path, body_hash)
            try:
                status, rheaders, data = await self._pool.request(api, method, path, headers, body)
            except (OSError, TimeoutError, ConnectionLost) as exc:
                self._mark_down(api, isinstance(exc, ConnectionRefusedError))
                raise NodeUnavailable(f"{api}: {exc!r}") from exc
            if status >= 500:
                raise NodeUnavailable(f"{api}: {method} {path} -> {status}")
            self._down_until.pop(api, None)
            self._refused.discard(api)
            return status, rheaders, data
        finally:
            if probe:
                self._probing.discard(api)

    async def _json(self, api: str, path: str, doc: dict[str, Any]) -> Any:
        status, _, data = await self._call(api, "POST", path, orjson.dumps(doc))
        if status == 204:
            return None
        if status != 200:
            raise NodeRejected(status, data[:200].decode("utf-8", "replace"))
        return orjson.loads(data)

    # -- shards -------------------------------------------------------------------------------

    async def put_shard(self, api: str, shard_id: str, data: bytes, blake3_hex: str) -> None:
        """Store a shard; ``blake3_hex`` is sent as the signed content hash, so the node
        refuses (``NodeRejected`` 403) bytes that do not match it. Durable on return."""
        status, _, body = await self._call(api, "PUT", f"/shards/{shard_id}", data, blake3_hex)
        if status != 204:
            raise NodeRejected(status, body[:200].decode("utf-8", "replace"))

    async def get_shard(self, api: str, shard_id: str, expected_hash: str | None = None,
                        force: bool = False, spans: list[tuple[int, int]] | None = None
                        ) -> bytes:
        """The shard's bytes, checked against the node's ``x-shoal-blake3`` and, when given,
        ``expected_hash`` (a prefix of the hex is enough). ShardMissing if absent or bad.
        ``force`` tries a node even while it is marked down: for a reader with no other
        way to reach k shards, one timeout beats a certain failure. ``spans``: only those
        byte spans, concatenated -- the node checked the whole shard against its stored
        hash, which must match ``expected_hash``; the spans cannot be re-hashed here."""
        path = f"/shards/{shard_id}"
        if spans is not None:
            path += "?spans=" + ",".join(f"{a}-{b}" for a, b in spans)
        status, headers, data = await self._call(api, "GET", path, force=force)
        if status == 404:
            raise ShardMissing(f"{shard_id} not on {api}")
        if status == 409:
            raise ShardMissing(f"{shard_id} corrupt on {api}", corrupt=True)
        if status != 200:
            raise NodeRejected(status, data[:200].decode("utf-8", "replace"))
        claimed = headers.get("x-shoal-blake3") or ""
        if spans is not None:
            if len(data) != sum(b - a for a, b in spans) or (
                    expected_hash is not None and not claimed.startswith(expected_hash)):
                raise ShardMissing(f"{shard_id} from {api} is not the shard asked for",
                                   corrupt=True)
            return data
        actual = await content_hash_async(data)
        if claimed != actual or (expected_hash is not None and not actual.startswith(expected_hash)):
            raise ShardMissing(f"{shard_id} from {api} fails its hash", corrupt=True)
        return data

    async def delete_shards(self, api: str, ids: list[str]) -> None:
        """Delete shards on the node (absent ones are fine). Durable on return."""
        if ids:
            await self._json(api, "/shards/delete", {"ids": ids})

    # -- metadata ---------------------------------------------------------------------------

    async def meta_put(self, api: str, items: list[tuple[str, dict]]) -> list[bool]:
        """Last-writer-wins put; which items replaced the node's record. Durable on return.
        Concurrent calls to one node are coalesced into one request."""
        return await self._puts.call(api, items)

    async def meta_get(self, api: str, keys: list[str]) -> list[dict | None]:
        """The node's records for ``keys`` (tombstones included), None where absent.
        Concurrent calls to one node are coalesced into one request."""
        return [None if raw is None else orjson.loads(raw)
                for raw in await self.meta_get_raw(api, keys)]

    async def meta_get_raw(self, api: str, keys: list[str]) -> list[bytes | None]:
        """``meta_get`` as each record's stored JSON bytes, for callers that compare
        copies before decoding one."""
        return [raw for raw, _ in await self._gets.call(api, keys)]

    async def meta_read(self, api: str, keys: list[str]) -> list[tuple[bytes | None, int]]:
        """``meta_get_raw`` with, beside each absent record, the purge mark of its
        partition on that node (cluster/store.py; 0 when it never purged, or runs a
        version that does not say)."""
        return await self._gets.call(api, keys)

    async def _meta_put_now(self, api: str, items: list[tuple[str, dict]]) -> list[bool]:
        doc = await self._json(api, "/meta/put", {"items": [[k, r] for k, r in items]})
        return doc["applied"]

    async def _meta_get_now(self, api: str, keys: list[str]
                            ) -> list[tuple[bytes | None, int]]:
        # Readers of one hot object share a batch: each record is asked for once.
        unique = list(dict.fromkeys(keys))
        doc = orjson.dumps({"keys": unique, "framed": True, "marks": True})
        status, headers, data = await self._call(api, "POST", "/meta/get", doc)
        if status != 200 or headers.get("content-type") != recordframes.MEDIA_TYPE:
            raise NodeRejected(status, data[:200].decode("utf-8", "replace"))
        try:
            raws, marks = recordframes.decode(data, len(unique))
        except ValueError as exc:
            raise NodeRejected(status, str(exc)) from None
        found = dict(zip(unique, zip(raws, marks, strict=True), strict=True))
        return [found[k] for k in keys]

    async def meta_scan(
        self, api: str, start: str, end: str, limit: int, summary: bool = True,
        fields: list[str] | None = None,
    ) -> tuple[list[tuple[str, dict]], bool]:
        """Records in [start, end) in byte order (``end=""``: unbounded), at most ``limit``
        (the node caps a page at 10,000); bool = more remain. ``summary`` drops "inline";
        ``fields`` keeps only those (and "hlc", "deleted")."""
        ask = {"start": start, "end": end, "limit": limit, "summary": summary}
        if fields is not None:
            ask["fields"] = fields
        doc = await self._json(api, "/meta/scan", ask)
        return [(k, r) for k, r in doc["items"]], doc["truncated"]

    async def meta_scan_framed(
        self, api: str, start: str, end: str, limit: int, fields: list[str],
        live: bool = False,
    ) -> ScanLines:
        """``meta_scan`` with small records as stored (see ScanLines); ``live`` leaves the
        tombstones out (the node reads up to 20,000 keys for ``limit`` records)."""
        ask = {"start": start, "end": end, "limit": limit, "framed": True, "fields": fields,
               "live": live}
        status, headers, data = await self._call(api, "POST", "/meta/scan", orjson.dumps(ask))
        if status != 200 or headers.get("content-type") != recordframes.SCAN_MEDIA_TYPE:
            raise NodeRejected(status, data[:200].decode("utf-8", "replace"))
        count = headers.get("x-shoal-count", "")
        if not count.isdigit() or (data.count(b"\n") + 1 if data else 0) != 2 * int(count):
            raise NodeRejected(status, "scan lines: wrong count")
        # A node from before live scans sends tombstones and no x-shoal-last: its last
        # record is then the last key it read.
        last = headers.get("x-shoal-last")
        return ScanLines(bytes(data), headers.get("x-shoal-truncated") == "1",
                         None if last is None else unquote(last))

    async def _get_json(self, api: str, path: str) -> Any:
        status, _, data = await self._call(api, "GET", path, b"", content_hash(b""))
        if status != 200:
            raise NodeRejected(status, data[:200].decode("utf-8", "replace"))
        return orjson.loads(data)

    async def health(self, api: str) -> dict:
        """{"name", "zone", "shards", "bytes", "meta_keys", "disk_bytes", "disk_free"} of
        the node."""
        return await self._get_json(api, "/health")

    # -- background work ------------------------------------------------------------------

    async def check_shards(self, api: str, ids: list[str], verify: bool = False
                           ) -> dict[str, tuple[str, str | None]]:
        """{id: (state, blake3 hex | None)}; state "ok" | "missing" | "corrupt". ``verify``
        makes the node re-hash the bytes (a scrub of those shards), else it reads the
        stored hash only."""
        doc = await self._json(api, "/shards/check", {"ids": ids, "verify": verify})
        return {k: (v[0], v[1]) for k, v in doc["shards"].items()}

    async def list_shards(self, api: str, after: str = "", limit: int = 1000) -> list[str]:
        """Shard ids on the node greater than ``after``, in byte order."""
        return (await self._json(api, "/shards/list", {"after": after, "limit": limit}))["ids"]

    async def meta_digests(self, api: str, bounds: list[str]) -> list[tuple[int, str]]:
        """(count, digest) of the node's records in each [bounds[i], bounds[i+1])."""
        doc = await self._json(api, "/meta/digests", {"bounds": bounds})
        return [(n, d) for n, d in doc["digests"]]

    async def purge_mark(self, api: str, partition: str) -> int:
        """The node's purge mark of ``partition`` (physical ms; 0: never purged, as a node
        from before purging answers with a 404 during a rolling upgrade)."""
        try:
            doc = await self._json(api, "/meta/purged", {"partition": partition})
        except NodeRejected as exc:
            if exc.status == 404:
                return 0
            raise
        return int(doc["mark"])

    async def admin_status(self, api: str) -> dict:
        """The node's background-work report (see cluster.nodework.NodeWork.status)."""
        return await self._get_json(api, "/admin/status")

    async def admin_run(self, api: str, task: str) -> None:
        """Ask the node to start a pass of ``task`` now (see cluster.nodework.TASKS)."""
        await self._json(api, "/admin/run", {"task": task})

    async def admin_drain(self, api: str) -> dict:
        """Begin draining the node; its drain status (see cluster.drain)."""
        return await self._json(api, "/admin/drain", {})
