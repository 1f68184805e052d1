"""The storage node's HTTP API (Starlette endpoints, cluster/noderouter.py dispatch),
served to gateways and peers.

Every route is authenticated. ``NodeAuthMiddleware`` checks the HMAC headers before a
single body byte is read; each handler then reads the body and checks it against the
signed ``x-shoal-content-hash``. Either failure answers 403 and touches nothing.

Routes (JSON bodies, stdlib json):

* ``PUT /shards/{id}`` shard bytes -> 204. The content hash *is* the shard's BLAKE3, so a
  shard whose declared hash does not match its bytes is refused (403) and never stored.
* ``GET /shards/{id}`` -> 200 bytes + ``x-shoal-blake3``; 404 absent; 409 corrupt.
  ``?spans=a-b,c-d`` sends only those byte spans, concatenated (range reads); the whole
  shard is still checked against its hash first.
* ``POST /shards/delete`` {"ids": [...]} -> 204.
* ``POST /meta/put`` {"items": [[key, record], ...]} -> {"applied": [bool, ...]}.
* ``POST /meta/get`` {"keys": [...]} -> {"records": [record | null, ...]}; with
  ``"framed": true``, the stored records as they are (cluster.recordframes), and with
  ``"marks": true`` also each absent record's partition purge mark.
* ``POST /meta/scan`` {"start", "end", "limit", "summary", "fields"} -> {"items",
  "truncated"}; summary drops each record's "inline" field so listings never ship object
  bodies; "fields" (optional) keeps only those fields, plus "hlc" and "deleted" which
  merging replies needs. With ``"framed": true``: lines alternating a JSON key and its
  record's JSON (``x-shoal-count`` pairs, ``x-shoal-truncated`` 1 or 0), records of at
  most ``SCAN_WHOLE_MAX`` bytes as stored, larger ones cut before their inline body
  when that leaves them small, else trimmed. Compact JSON holds no
  newline, so one split cuts the answer, and owners holding the same records send the
  same bytes. Framed with ``"live": true``: no tombstones, and when truncated,
  ``x-shoal-last`` (percent-encoded) is the last key read, to resume after.
* ``GET /health`` -> {"name", "zone", "shards", "bytes", "meta_keys", "disk_bytes",
  "disk_free"}: stored shard bytes, and the size and free space of the DB's file system.
* ``POST /shards/check`` {"ids", "verify"} -> {"shards": {id: [state, blake3 | null]}}, state
  "ok" | "missing" | "corrupt"; ``verify`` re-hashes the bytes, else the stored hash is read.
* ``POST /shards/list`` {"after", "limit"} -> {"ids": [...]} in byte order (keys only).
* ``POST /meta/digests`` {"bounds": [k0, ..., kn]} -> {"digests": [[count, hex], ...]} per
  [k_i, k_i+1) (the last bound may be "": unbounded); anti-entropy compares these.
* ``POST /meta/purged`` {"partition"} -> {"mark": ms}: the partition's purge mark
  (cluster/store.py); anti-entropy reads it to tell a purged record from a missing one.
* ``GET /admin/status`` -> the node's background work (repair, scrub, gc, anti-entropy);
  ``POST /admin/run`` {"task"} starts a pass now; ``POST /admin/drain`` begins draining
  this node (cluster/drain.py) and answers its drain status.

Every operation is idempotent (puts of the same shard or record, deletes), which is what
lets the client retry on a dropped keep-alive connection.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from cluster import recordframes
from cluster.httpserve import read_body
from cluster.nodeauth import HASH_HEADER, AuthError, Verifier, content_hash_async
from cluster.noderouter import NodeRouter
from cluster.store import CorruptShard, NodeStore


class FastJSON(JSONResponse):
    """Starlette's JSONResponse encoded by orjson: node answers (scans, record batches)
    are the JSON every metadata operation waits on."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)

SHARD_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
MAX_SCAN = 10_000  # items per scan response; callers page on "truncated"
# A framed scan sends records up to this size as they are stored (most listed objects:
# empty, small, or one block), undecoded; larger ones trimmed as in a JSON scan.
SCAN_WHOLE_MAX = 2048
LIVE_SCAN_BUDGET = 20_000  # keys a live-only scan reads per answer, tombstones included


_INLINE = b',"inline":"'


def without_inline(raw: bytes) -> bytes | None:
    """A stored record cut before its inline body, when that body is its last field (as
    the store writes them) and the rest is small; else None. Decoding a 4 KiB object's
    record to drop the body was a third of a node's CPU in listings of such objects.
    Exact: the match must end the record as a plain string (base64 has no quote), and a
    quote inside any string is escaped, so ``,"inline":"`` there is a top-level key."""
    at = raw.rfind(_INLINE)
    if at < 0 or not raw.endswith(b'"}') or raw.find(b'"', at + len(_INLINE)) != len(raw) - 2:
        return None
    cut = raw[:at] + b"}"
    return cut if len(cut) <= SCAN_WHOLE_MAX and b"\n" not in cut else None


def _trim(record: dict[str, Any], keep: set[str] | None, summary: bool) -> dict[str, Any]:
    """A scanned record as sent: only ``keep``'s fields, or without its "inline" body
    (``summary``). Fields stay in the record's order, so owners holding the same record
    send the same bytes."""
    if keep is not None:
        return {f: v for f, v in record.items() if f in keep}
    if summary:
        return {f: v for f, v in record.items() if f != "inline"}
    return record


class BadRequest(Exception):
    """Malformed request body or parameter: 400, nothing changed."""


class NodeAuthMiddleware:
    """Pure ASGI: reject unauthenticated HTTP requests with 403 before reading the body."""

    def __init__(self, app: ASGIApp, verifier: Verifier) -> None:
        self.app = app
        self.verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            try:
                self.verifier.check(scope["method"], path_qs(scope), headers)
            except AuthError as exc:
                await FastJSON({"error": "forbidden", "reason": str(exc)}, 403)(
                    scope, receive, send
                )
                return
        await self.app(scope, receive, send)


def path_qs(scope: Scope) -> str:
    """The request target as the client signed it: raw path, then ``?query`` if any."""
    raw = scope.get("raw_path") or scope["path"].encode()
    path = raw.decode("latin-1").split("?", 1)[0]
    qs = scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{qs}" if qs else path


async def verified_body(request: Request) -> bytes | bytearray:
    """The whole body, or AuthError if it is not the body whose hash was signed."""
    body = await read_body(request.scope)  # in place, past NodeAuthMiddleware
    if body is None:
        body = await request.body()
    if await content_hash_async(body) != request.headers.get(HASH_HEADER):
        raise AuthError("body does not match x-shoal-content-hash")
    return body


async def json_body(request: Request) -> dict[str, Any]:
    try:
        doc = orjson.loads(await verified_body(request))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"bad JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadRequest("body must be a JSON object")
    return doc


def _spans(raw: str | None) -> list[tuple[int, int]] | None:
    """``spans=a-b,c-d`` (at most 4, each 0 <= a <= b) of a ranged shard read."""
    if raw is None:
        return None
    try:
        spans = [(int(a), int(b)) for a, b in (part.split("-") for part in raw.split(","))]
    except ValueError:
        raise BadRequest("spans must look like 0-80,1000-2000") from None
    if not 1 <= len(spans) <= 4 or any(not 0 <= a <= b for a, b in spans):
        raise BadRequest("1 to 4 spans, each start <= end")
    return spans


def _str_list(doc: dict[str, Any], name: str) -> list[str]:
    value = doc.get(name)
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise BadRequest(f"{name!r} must be a list of strings")
    return value


def _shard_id(request: Request) -> str:
    shard_id = request.path_params["shard_id"]
    if not SHARD_ID.fullmatch(shard_id):
        raise BadRequest("bad shard id")
    return shard_id


def create_node_app(store: NodeStore, secret: bytes, name: str, zone: str,
                    background: Any = None) -> ASGIApp:
    """The node API over ``store``. The app's lifespan starts and closes the store.
    ``background`` (cluster.nodework.NodeWork) serves the /admin routes when given, and
    is stopped before the store closes."""

    async def shutdown() -> None:
        # Background work first: a scan or repair still running would meet a closed store.
        if background is not None:
            await background.stop()
        await store.close()

    async def put_shard(request: Request) -> Response:
        shard_id = _shard_id(request)
        body = await verified_body(request)
        # verified_body proved the signed content hash is this body's BLAKE3.
        await store.put_shard(shard_id, body, request.headers[HASH_HEADER])
        return Response(status_code=204)

    async def get_shard(request: Request) -> Response:
        shard_id = _shard_id(request)
        spans = _spans(request.query_params.get("spans"))
        await verified_body(request)
        try:
            # A whole shard is checked by its reader (NodeClient.get_shard hashes what it
            # receives against x-shoal-blake3 and the record's hash), so hashing it here
            # too would only double the work; spans it cannot check, so they are checked
            # here, against the whole shard.
            found = await store.get_shard_with_hash(shard_id, spans, verify=False)
        except CorruptShard:
            return FastJSON({"error": "corrupt"}, 409)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        if found is None:
            return FastJSON({"error": "not found"}, 404)
        data, digest = found
        return Response(data, 200, {"x-shoal-blake3": digest}, "application/octet-stream")

    async def delete_shards(request: Request) -> Response:
        ids = _str_list(await json_body(request), "ids")
        if not all(SHARD_ID.fullmatch(i) for i in ids):
            raise BadRequest("bad shard id")
        await store.delete_shards(ids)
        return Response(status_code=204)

    async def meta_put(request: Request) -> Response:
        items = (await json_body(request)).get("items")
        if not isinstance(items, list) or not all(
            isinstance(it, list) and len(it) == 2 and isinstance(it[0], str)
            and isinstance(it[1], dict)
            for it in items
        ):
            raise BadRequest("'items' must be a list of [key, record]")
        try:
            applied = await store.meta_put([(k, r) for k, r in items])
        except (ValueError, UnicodeEncodeError) as exc:
            raise BadRequest(str(exc)) from None
        return FastJSON({"applied": applied})

    async def meta_get(request: Request) -> Response:
        doc = await json_body(request)
        keys = _str_list(doc, "keys")
        try:
            raws = store.meta_get_raw(keys)
        except UnicodeEncodeError as exc:
            raise BadRequest(str(exc)) from None
        if doc.get("framed") is True:  # what NodeClient asks for
            marks = store.purge_marks(keys) if doc.get("marks") is True and None in raws else None
            return Response(recordframes.encode(raws, marks), media_type=recordframes.MEDIA_TYPE)
        # Stored records are JSON already: spliced, not decoded and encoded again (a
        # 16-block record took 41 µs per round trip through orjson).
        body = b'{"records":[' + b",".join(b"null" if r is None else r for r in raws) + b"]}"
        return Response(body, media_type="application/json")

    async def meta_scan(request: Request) -> Response:
        doc = await json_body(request)
        start, end, limit = doc.get("start"), doc.get("end", ""), doc.get("limit")
        summary = doc.get("summary", True)
        if not isinstance(start, str) or not isinstance(end, str):
            raise BadRequest("'start' and 'end' must be strings")
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise BadRequest("'limit' must be a non-negative integer")
        if not isinstance(summary, bool):
            raise BadRequest("'summary' must be a boolean")
        fields = doc.get("fields")
        keep = None if fields is None else {*_str_list(doc, "fields"), "hlc", "deleted"}
        framed, live = doc.get("framed") is True, doc.get("live") is True
        headers: dict[str, str] = {}
        try:
            if framed and live:
                found, last = await store.meta_scan_live(start, end, min(limit, MAX_SCAN),
                                                         LIVE_SCAN_BUDGET)
                truncated = last is not None
                if last is not None:
                    headers["x-shoal-last"] = quote(last, safe="")
            else:
                found, truncated = await store.meta_scan_raw(start, end, min(limit, MAX_SCAN))
        except UnicodeEncodeError as exc:
            raise BadRequest(str(exc)) from None
        if framed:  # what NodeClient.meta_scan_framed asks for
            lines: list[bytes] = []
            for k, raw in found:
                if len(raw) > SCAN_WHOLE_MAX or b"\n" in raw:
                    raw = without_inline(raw) or orjson.dumps(
                        _trim(orjson.loads(raw), keep, summary))
                lines += (orjson.dumps(k.decode()), raw)
            headers |= {"x-shoal-count": str(len(found)),
                        "x-shoal-truncated": "1" if truncated else "0"}
            return Response(b"\n".join(lines), media_type=recordframes.SCAN_MEDIA_TYPE,
                            headers=headers)
        items = [(k.decode(), _trim(orjson.loads(raw), keep, summary)) for k, raw in found]
        return FastJSON({"items": items, "truncated": truncated})

    async def health(request: Request) -> Response:
        await verified_body(request)
        return FastJSON({"name": name, "zone": zone, **(await store.astats())})

    async def check_shards(request: Request) -> Response:
        doc = await json_body(request)
        ids, verify = _str_list(doc, "ids"), doc.get("verify", False)
        if not all(SHARD_ID.fullmatch(i) for i in ids) or not isinstance(verify, bool):
            raise BadRequest("bad shard id or 'verify'")
        out: dict[str, list] = {}
        for shard_id in ids:
            try:
                if verify:
                    found = await store.get_shard_with_hash(shard_id)
                    digest = None if found is None else found[1]
                else:
                    digest = await store.shard_hash(shard_id)
            except CorruptShard:
                out[shard_id] = ["corrupt", None]
                continue
            out[shard_id] = ["missing", None] if digest is None else ["ok", digest]
        return FastJSON({"shards": out})

    async def list_shards(request: Request) -> Response:
        doc = await json_body(request)
        after, limit = doc.get("after", ""), doc.get("limit", 1000)
        if not isinstance(after, str) or not isinstance(limit, int) or not 0 <= limit <= MAX_SCAN:
            raise BadRequest("'after' must be a string and 'limit' 0..10000")
        return FastJSON({"ids": await store.shard_ids(after, limit)})

    async def meta_digests(request: Request) -> Response:
        bounds = _str_list(await json_body(request), "bounds")
        if len(bounds) > 1025:
            raise BadRequest("at most 1024 ranges")
        try:
            digests = await store.meta_digests(bounds)
        except UnicodeEncodeError as exc:
            raise BadRequest(str(exc)) from None
        return FastJSON({"digests": digests})

    async def purge_mark(request: Request) -> Response:
        partition = (await json_body(request)).get("partition")
        if not isinstance(partition, str):
            raise BadRequest("'partition' must be a string")
        return FastJSON({"mark": store.purge_mark(partition)})

    async def admin_status(request: Request) -> Response:
        await verified_body(request)
        if background is None:
            return FastJSON({"error": "no background work on this node"}, 404)
        return FastJSON(background.status())

    async def admin_run(request: Request) -> Response:
        doc = await json_body(request)
        if background is None:
            return FastJSON({"error": "no background work on this node"}, 404)
        try:
            background.run_now(doc.get("task"))
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        return FastJSON({"started": doc.get("task")})

    async def admin_drain(request: Request) -> Response:
        await verified_body(request)
        if background is None:
            return FastJSON({"error": "no background work on this node"}, 404)
        try:
            return FastJSON(await background.begin_drain())
        except RuntimeError as exc:
            return FastJSON({"error": str(exc)}, 503)

    async def forbidden(request: Request, exc: Exception) -> Response:
        return FastJSON({"error": "forbidden", "reason": str(exc)}, 403)

    async def bad_request(request: Request, exc: Exception) -> Response:
        return FastJSON({"error": "bad request", "reason": str(exc)}, 400)

    return NodeAuthMiddleware(NodeRouter(
        [
            ("POST", "/shards/delete", delete_shards),
            ("POST", "/shards/check", check_shards),
            ("POST", "/shards/list", list_shards),
            ("POST", "/meta/digests", meta_digests),
            ("POST", "/meta/purged", purge_mark),
            ("GET", "/admin/status", admin_status),
            ("POST", "/admin/run", admin_run),
            ("POST", "/admin/drain", admin_drain),
            ("PUT", "/shards/{shard_id}", put_shard),
            ("GET", "/shards/{shard_id}", get_shard),
            ("POST", "/meta/put", meta_put),
            ("POST", "/meta/get", meta_get),
            ("POST", "/meta/scan", meta_scan),
            ("GET", "/health", health),
        ],
        errors={AuthError: forbidden, BadRequest: bad_request},
        startup=store.start, shutdown=shutdown,
    ), Verifier(secret))


def main(argv: list[str] | None = None) -> None:
    """Development runner: one node on loopback, secret from SHOAL_CLUSTER_SECRET."""
    import uvicorn

    from cluster.httpserve import InPlaceBodyProtocol

    p = argparse.ArgumentParser(prog="python -m cluster.nodeapp")
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", required=True, type=int)
    p.add_argument("--name", required=True)
    p.add_argument("--zone", default="z1")
    args = p.parse_args(argv)
    secret = os.environ.get("SHOAL_CLUSTER_SECRET")
    if not secret:
        p.error("SHOAL_CLUSTER_SECRET must be set")
    app = create_node_app(NodeStore(args.data), secret.encode(), args.name, args.zone)
    uvicorn.run(
        app, host=args.host, port=args.port, loop="uvloop", http=InPlaceBodyProtocol,
        log_level="warning", timeout_keep_alive=30,
    )


if __name__ == "__main__":
    main()
