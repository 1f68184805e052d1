"""A real storage node process (uvicorn + RocksDB) driven through NodeClient and raw HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest

from cluster.nodeauth import content_hash, sign
from cluster.nodeclient import NodeClient, NodeRejected, NodeUnavailable, ShardMissing
from cluster.store import NodeStore
from tests.harness import digest_by_definition, with_node_client

T = TypeVar("T")
SECRET = b"test-cluster-secret"
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Node:
    data: Path
    port: int
    proc: subprocess.Popen | None = None

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {**os.environ, "SHOAL_CLUSTER_SECRET": SECRET.decode()}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cluster.nodeapp", "--data", str(self.data),
             "--port", str(self.port), "--name", "n1", "--zone", "z1"],
            cwd=ROOT, env=env,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "node process exited during start-up"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("node did not start listening")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)
        self.proc = None

    def kill_everything(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def make_node(tmp_path: Path) -> Iterator[Callable[[], Node]]:
    nodes: list[Node] = []

    def make() -> Node:
        node = Node(tmp_path / f"node{len(nodes)}", free_port())
        nodes.append(node)
        node.start()
        return node

    yield make
    for node in nodes:
        node.kill_everything()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    n = Node(tmp_path_factory.mktemp("shared-node"), free_port())
    n.start()
    yield n
    n.stop()


def with_client(fn: Callable[[NodeClient], Awaitable[T]], **kwargs: Any) -> T:
    return with_node_client(SECRET, fn, **kwargs)


def rec(ms: int, origin: str = "g1", **fields: Any) -> dict:
    return {"hlc": [ms, 0, origin], **fields}


# -- shards ------------------------------------------------------------------------------------


def test_shard_put_get_delete(node: Node) -> None:
    data = os.urandom(300_000)
    digest = content_hash(data)

    async def body(c: NodeClient) -> None:
        await c.put_shard(node.api, "blk1.0", data, digest)
        await c.put_shard(node.api, "blk1.1", b"", content_hash(b""))
        assert await c.get_shard(node.api, "blk1.0") == data
        assert await c.get_shard(node.api, "blk1.0", digest[:16]) == data  # shortened hash
        assert await c.get_shard(node.api, "blk1.1", content_hash(b"")) == b""
        with pytest.raises(ShardMissing) as wrong:
            await c.get_shard(node.api, "blk1.0", content_hash(b"something else")[:16])
        assert wrong.value.corrupt
        health = await c.health(node.api)
        assert health["name"] == "n1" and health["zone"] == "z1"
        assert health["shards"] >= 2 and health["bytes"] >= len(data)
        await c.delete_shards(node.api, ["blk1.0", "blk1.1", "never-there"])
        with pytest.raises(ShardMissing) as gone:
            await c.get_shard(node.api, "blk1.0")
        assert not gone.value.corrupt
        assert not c.is_down(node.api)

    with_client(body)


def test_shard_spans_send_only_those_bytes(node: Node) -> None:
    data = os.urandom(300_000)
    digest = content_hash(data)

    async def body(c: NodeClient) -> None:
        await c.put_shard(node.api, "blk4.1", data, digest)
        got = await c.get_shard(node.api, "blk4.1", digest[:32], spans=[(0, 80), (1000, 5000)])
        assert got == data[:80] + data[1000:5000]
        with pytest.raises(ShardMissing) as other:  # the node's hash is not the record's
            await c.get_shard(node.api, "blk4.1", content_hash(b"x")[:32], spans=[(0, 8)])
        assert other.value.corrupt
        for bad in ([(0, len(data) + 1)], [(9, 2)], [(0, 1)] * 5):
            with pytest.raises(NodeRejected) as refused:
                await c.get_shard(node.api, "blk4.1", spans=bad)
            assert refused.value.status == 400

    with_client(body)


def test_shard_with_wrong_hash_is_refused_on_write(node: Node) -> None:
    async def body(c: NodeClient) -> None:
        with pytest.raises(NodeRejected) as refused:
            await c.put_shard(node.api, "blk2.0", b"real bytes", content_hash(b"claimed bytes"))
        assert refused.value.status == 403
        with pytest.raises(ShardMissing) as missing:
            await c.get_shard(node.api, "blk2.0")
        assert not missing.value.corrupt
        assert not c.is_down(node.api)  # a refusal is an answer, not an outage

    with_client(body)


def test_bad_shard_id_is_400(node: Node) -> None:
    async def body(c: NodeClient) -> None:
        with pytest.raises(NodeRejected) as bad:
            await c.put_shard(node.api, "a" * 129, b"x", content_hash(b"x"))
        assert bad.value.status == 400

    with_client(body)


def test_corrupt_stored_shard_is_refused_as_corrupt(make_node: Callable[[], Node]) -> None:
    """Whole shards are checked by the client, spans by the node (409): either way the
    caller gets ShardMissing(corrupt), never the rotten bytes."""
    n = make_node()
    n.stop()

    async def corrupt_on_disk() -> None:
        store = NodeStore(n.data)
        await store.start()
        await store.put_shard("blk3.0", b"rotten bytes", content_hash(b"original bytes"))
        await store.close()

    asyncio.run(corrupt_on_disk())
    n.start()

    async def body(c: NodeClient) -> None:
        with pytest.raises(ShardMissing) as bad:
            await c.get_shard(n.api, "blk3.0")
        assert bad.value.corrupt
        with pytest.raises(ShardMissing) as ranged:  # a range read checks the whole shard
            await c.get_shard(n.api, "blk3.0", spans=[(0, 4)])
        assert ranged.value.corrupt

    with_client(body)


# -- metadata ----------------------------------------------------------------------------------


def test_meta_last_writer_wins(node: Node) -> None:
    async def body(c: NodeClient) -> None:
        key = "bkt/lww-object"
        assert await c.meta_put(node.api, [(key, rec(200, etag="new"))]) == [True]
        assert await c.meta_put(node.api, [(key, rec(100, etag="old"))]) == [False]
        assert await c.meta_get(node.api, [key, "bkt/absent"]) == [rec(200, etag="new"), None]
        tomb = rec(300, deleted=True)
        assert await c.meta_put(node.api, [(key, tomb), (key, rec(250))]) == [True, False]
        assert await c.meta_get(node.api, [key]) == [tomb]

    with_client(body)


def test_meta_get_batches_repeated_keys_and_sends_stored_bytes(node: Node) -> None:
    """Concurrent reads of one key share a request and each get the record; the framed
    answer carries exactly the bytes the JSON answer holds."""
    async def body(c: NodeClient) -> None:
        key = "bkt/hot-object/é"
        assert await c.meta_put(node.api, [(key, rec(7, etag="hot"))]) == [True]
        reads = await asyncio.gather(*(c.meta_get(node.api, [key, "bkt/none", key])
                                       for _ in range(20)))
        assert reads == [[rec(7, etag="hot"), None, rec(7, etag="hot")]] * 20
        assert reads[0][0] is not reads[1][0]  # each caller decodes its own copy
        raw = (await c.meta_get_raw(node.api, [key]))[0]
        assert raw is not None and json.loads(raw) == rec(7, etag="hot")
        doc = json.dumps({"keys": [key]}).encode()
        status, _, answer = await c._call(node.api, "POST", "/meta/get", doc)
        assert status == 200 and json.loads(answer) == {"records": [json.loads(raw)]}

    with_client(body)


def test_meta_scan_order_and_summary(node: Node) -> None:
    keys = ["scan/a", "scan/Z", "scan/é", "scan/日本語", "scan/\U0001f41f", "scan/z", "scan0"]

    async def body(c: NodeClient) -> None:
        items = [(k, rec(1, inline="SGVsbG8=", size=5)) for k in keys]
        assert await c.meta_put(node.api, items) == [True] * len(keys)
        inside = sorted((k for k in keys if k.startswith("scan/")), key=lambda k: k.encode())
        got, more = await c.meta_scan(node.api, "scan/", "scan0", 100)
        assert [k for k, _ in got] == inside and not more
        assert all("inline" not in r and r["size"] == 5 for _, r in got)
        page, more = await c.meta_scan(node.api, "scan/", "scan0", 2, summary=False)
        assert [k for k, _ in page] == inside[:2] and more
        assert all(r["inline"] == "SGVsbG8=" for _, r in page)
        slim, _ = await c.meta_scan(node.api, "scan/", "scan0", 100, fields=["size"])
        assert [k for k, _ in slim] == inside
        assert all(r == {"hlc": [1, 0, "g1"], "size": 5} for _, r in slim)

    with_client(body)


def test_framed_meta_scan_sends_small_records_as_stored(node: Node) -> None:
    """A framed scan sends each small record as its stored bytes (so two owners' copies
    compare as bytes) and a large one trimmed to the asked fields; pages as JSON scans do."""
    big = rec(1, size=9, blocks=[{"id": "x" * 32, "size": 1, "shards": [["n", "h" * 16]] * 6}
                                 for _ in range(16)])

    async def body(c: NodeClient) -> None:
        assert await c.meta_put(node.api, [("fr/a", rec(1, size=5)), ("fr/b", big),
                                           ("fr/c", rec(2, size=7))]) == [True] * 3
        stored = dict(zip(["fr/a", "fr/c"], await c.meta_get_raw(node.api, ["fr/a", "fr/c"]),
                          strict=True))
        lines = await c.meta_scan_framed(node.api, "fr/", "fr0", 100, fields=["size"])
        got = lines.pairs()
        assert [k for k, _ in got] == ["fr/a", "fr/b", "fr/c"] and not lines.truncated
        raws = dict(got)
        assert raws["fr/a"] == stored["fr/a"] and raws["fr/c"] == stored["fr/c"]
        assert json.loads(raws["fr/b"]) == {"hlc": [1, 0, "g1"], "size": 9}
        page = await c.meta_scan_framed(node.api, "fr/", "fr0", 2, fields=["size"])
        assert [k for k, _ in page.pairs()] == ["fr/a", "fr/b"] and page.truncated
        small = rec(4, size=3000, inline="QUJD" * 1000, etag="e")  # a small object's
        assert await c.meta_put(node.api, [("fr/i", small)]) == [True]
        lines = await c.meta_scan_framed(node.api, "fr/i", "fr/j", 10, fields=["size"])
        assert lines.records() == [("fr/i", {"hlc": [4, 0, "g1"], "size": 3000, "etag": "e"})]
        odd = "fr/new\nline \"quoted\""  # a key a line or a JSON string could break on
        assert await c.meta_put(node.api, [(odd, rec(3, size=1))]) == [True]
        lines = await c.meta_scan_framed(node.api, "fr/", "fr0", 100, fields=["size"])
        assert odd in dict(lines.pairs())
        decoded = dict(lines.records())  # every line decoded in one call
        assert decoded == {k: json.loads(raw) for k, raw in lines.pairs()}
        assert decoded[odd]["size"] == 1 and decoded["fr/b"] == {"hlc": [1, 0, "g1"], "size": 9}

    with_client(body)


def test_live_framed_scan_leaves_tombstones_out_and_says_where_it_stopped(node: Node) -> None:
    """A listing's scan skips tombstones (delete markers too) but not a live record that
    merely mentions "deleted"; truncated, it names the last key read, which may be a
    tombstone past the last record sent."""
    tomb = {"hlc": [2, 0, "g1"], "deleted": True}
    live = {**rec(1, size=3), "meta": {"deleted": "true"}}

    async def body(c: NodeClient) -> None:
        assert await c.meta_put(node.api, [
            ("lv/a", live), ("lv/b", tomb), ("lv/c", {**tomb, "delete_marker": True}),
            ("lv/d", rec(1, size=4)), ("lv/e", tomb)]) == [True] * 5
        whole = await c.meta_scan_framed(node.api, "lv/", "lv0", 100, ["size"], live=True)
        assert [k for k, _ in whole.pairs()] == ["lv/a", "lv/d"]
        assert not whole.truncated and whole.horizon() is None
        one = await c.meta_scan_framed(node.api, "lv/", "lv0", 1, ["size"], live=True)
        assert [k for k, _ in one.pairs()] == ["lv/a"] and one.horizon() == "lv/a"
        two = await c.meta_scan_framed(node.api, "lv/", "lv0", 2, ["size"], live=True)
        assert [k for k, _ in two.pairs()] == ["lv/a", "lv/d"] and two.horizon() == "lv/d"
        rest = await c.meta_scan_framed(node.api, "lv/b", "lv0", 1, ["size"], live=True)
        assert [k for k, _ in rest.pairs()] == ["lv/d"] and rest.horizon() == "lv/d"
        gone = await c.meta_scan_framed(node.api, "lv/e", "lv0", 1, ["size"], live=True)
        assert gone.pairs() == [] and not gone.truncated
        with_tombs = await c.meta_scan_framed(node.api, "lv/", "lv0", 100, ["size"])
        assert len(with_tombs.pairs()) == 5

    with_client(body)


def test_malformed_meta_is_400_and_writes_nothing(node: Node) -> None:
    async def body(c: NodeClient) -> None:
        with pytest.raises(NodeRejected) as bad:
            await c.meta_put(node.api, [("bad/ok", rec(1)), ("bad/no-hlc", {"etag": "x"})])
        assert bad.value.status == 400
        assert await c.meta_get(node.api, ["bad/ok", "bad/no-hlc"]) == [None, None]

    with_client(body)


# -- authentication ---------------------------------------------------------------------------


async def raw(
    api: str, method: str, path: str, body: bytes, headers: dict[str, str]
) -> int:
    async with aiohttp.ClientSession() as s, s.request(
        method, api + path, data=body, headers=headers
    ) as resp:
        await resp.read()
        return resp.status


def test_unknown_routes_are_404_and_wrong_methods_405(node: Node) -> None:
    async def status(method: str, path: str) -> int:
        return await raw(node.api, method, path, b"",
                         sign(SECRET, method, path, content_hash(b"")))

    async def body(c: NodeClient) -> None:
        await c.put_shard(node.api, "delete", b"id", content_hash(b"id"))
        assert await status("GET", "/nope") == 404
        assert await status("GET", "/shards/a/b") == 404
        assert await status("GET", "/shards/") == 404
        assert await status("POST", "/health") == 405
        assert await status("DELETE", "/shards/x.0") == 405
        assert await status("GET", "/meta/get") == 405
        # A literal route and the {shard_id} route share the /shards/ prefix: a GET of
        # the shard named "delete" reaches the shard, not POST /shards/delete.
        assert await c.get_shard(node.api, "delete") == b"id"
        assert await status("GET", "/shards/absent.0") == 404

    with_client(body)


def test_unauthenticated_requests_are_403_and_change_nothing(node: Node) -> None:
    shard = b"intruder bytes"
    meta = json.dumps({"items": [["auth/k", rec(10**12, etag="evil")]]}).encode()

    def signed(method: str, path: str, body: bytes, **kw: Any) -> dict[str, str]:
        return sign(kw.pop("secret", SECRET), method, path, content_hash(body), **kw)

    async def body(c: NodeClient) -> None:
        await c.meta_put(node.api, [("auth/k", rec(1, etag="good"))])
        attempts = [
            ("PUT", "/shards/auth.0", shard, {}),
            ("PUT", "/shards/auth.0", shard, signed("PUT", "/shards/auth.0", shard,
                                                    secret=b"wrong secret")),
            ("PUT", "/shards/auth.0", shard, signed("PUT", "/shards/auth.0", shard,
                                                    now=time.time() - 120)),
            ("PUT", "/shards/auth.0", shard, signed("PUT", "/shards/auth.1", shard)),
            ("POST", "/meta/put", meta, {}),
            ("POST", "/meta/put", meta, signed("POST", "/meta/put", b'{"items": []}')),
            ("POST", "/meta/put", meta, signed("POST", "/meta/put", meta,
                                               secret=b"wrong secret")),
            ("GET", "/health", b"", {}),
        ]
        for method, path, payload, headers in attempts:
            assert await raw(node.api, method, path, payload, headers) == 403, (path, headers)
        with pytest.raises(ShardMissing):
            await c.get_shard(node.api, "auth.0")
        assert await c.meta_get(node.api, ["auth/k"]) == [rec(1, etag="good")]

    with_client(body)


def test_replayed_request_is_403_and_changes_nothing(node: Node) -> None:
    delete = json.dumps({"ids": ["replay.0"]}).encode()
    headers = sign(SECRET, "POST", "/shards/delete", content_hash(delete))

    async def body(c: NodeClient) -> None:
        await c.put_shard(node.api, "replay.0", b"v1", content_hash(b"v1"))
        assert await raw(node.api, "POST", "/shards/delete", delete, headers) == 204
        await c.put_shard(node.api, "replay.0", b"v2", content_hash(b"v2"))
        assert await raw(node.api, "POST", "/shards/delete", delete, headers) == 403
        assert await c.get_shard(node.api, "replay.0") == b"v2"

    with_client(body)


# -- faults ------------------------------------------------------------------------------------


def test_acknowledged_writes_survive_sigkill(make_node: Callable[[], Node]) -> None:
    n = make_node()
    data = os.urandom(200_000)

    async def write(c: NodeClient) -> None:
        await c.put_shard(n.api, "durable.0", data, content_hash(data))
        await c.meta_put(n.api, [("dur/k", rec(5, etag="e"))])
        n.stop(signal.SIGKILL)  # right after the acknowledgements, before any flush

    with_client(write)
    n.start()

    async def read(c: NodeClient) -> None:
        assert await c.get_shard(n.api, "durable.0", content_hash(data)) == data
        assert await c.meta_get(n.api, ["dur/k"]) == [rec(5, etag="e")]

    with_client(read)


def test_records_and_their_digest_clocks_never_split_on_sigkill(
        make_node: Callable[[], Node]) -> None:
    """SIGKILL while metadata writes are in flight: every acknowledged record survives,
    and the digest (read from the meta_clocks index) matches the records stored, so no
    record was kept without its clock or the other way round."""
    n = make_node()
    acked: dict[str, dict] = {}

    async def write(c: NodeClient) -> None:
        async def one(i: int) -> None:
            key, record = f"clk/{i:04d}", rec(10 + i, etag=f"e{i}")
            await c.meta_put(n.api, [(key, record)])
            acked[key] = record

        tasks = [asyncio.ensure_future(one(i)) for i in range(400)]
        while len(acked) < 40:
            await asyncio.sleep(0.001)
        n.stop(signal.SIGKILL)
        await asyncio.gather(*tasks, return_exceptions=True)

    with_client(write)
    assert 40 <= len(acked) < 400, len(acked)  # killed mid-stream, not before or after
    n.start()

    async def check(c: NodeClient) -> None:
        items, _ = await c.meta_scan(n.api, "clk/", "clk0", 1000, summary=False)
        stored = dict(items)
        assert {k: stored.get(k) for k in acked} == acked
        assert await c.meta_digests(n.api, ["clk/", "clk0"]) == [digest_by_definition(stored)]

    with_client(check)


def test_stopped_node_costs_one_timeout_then_fails_fast(make_node: Callable[[], Node]) -> None:
    n = make_node()

    async def body(c: NodeClient) -> None:
        await c.health(n.api)  # a pooled keep-alive connection now exists
        assert n.proc is not None
        n.proc.send_signal(signal.SIGSTOP)
        try:
            with pytest.raises(NodeUnavailable) as first:
                await c.meta_get(n.api, ["k"])
            assert not isinstance(first.value, NodeRejected)
            assert c.is_down(n.api)  # the fast path will be taken
            assert not c.unmark_refused([n.api])  # asking again would cost a timeout
            with pytest.raises(NodeUnavailable, match="marked down"):
                await c.get_shard(n.api, "x.0")
        finally:
            n.proc.send_signal(signal.SIGCONT)
        while c.is_down(n.api):  # cooldown, then one probe goes through
            await asyncio.sleep(0.1)
        assert await c.meta_get(n.api, ["k"]) == [None]
        assert not c.is_down(n.api)

    with_client(body, timeout=1.0, down_cooldown=2.0)


def test_refused_connection_marks_node_down(tmp_path: Path) -> None:
    api = f"http://127.0.0.1:{free_port()}"  # nothing listens here

    async def body(c: NodeClient) -> None:
        with pytest.raises(NodeUnavailable):
            await c.health(api)
        assert c.is_down(api)
        with pytest.raises(NodeUnavailable, match="marked down"):
            await c.health(api)
        # A caller with nobody else to ask may clear a refusal's mark: asking is cheap.
        assert c.unmark_refused([api]) and not c.is_down(api)
        with pytest.raises(NodeUnavailable) as again:
            await c.health(api)
        assert "marked down" not in str(again.value) and c.is_down(api)

    with_client(body)
