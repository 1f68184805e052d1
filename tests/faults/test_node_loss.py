"""Failure stories on a 6-node, 3-zone cluster with the default 4+2 policy.

One story, told in order on one cluster: a hung node, then m=2 nodes killed (reads and
writes go on), then the two worst nodes for the bucket's metadata killed (reads go on,
degraded), then m+1 killed (a clean 503, never wrong bytes), then every node back
(everything acknowledged reads back byte-identical).

Objects written while a node was down or hung are kept apart (``degraded``): their
missing shard slots doubled up on survivors, so until repair (a later issue) they
tolerate fewer further failures. They are read back at once and when all nodes return.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import signal
import threading
import time
from collections.abc import Callable

import pytest
from botocore.exceptions import ClientError

from gateway.adminclient import AdminClient, locate
from tests.harness import spec_answers, wait_healthy, wait_until

MiB = 1024 * 1024
BUCKET = "faults"


@pytest.fixture(scope="module")
def s3(cluster):
    client = cluster.client()
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture(scope="module")
def stored(s3):
    """The objects every step re-reads: {key: sha256}; steps add what they wrote."""
    objects = {f"small/{i}": os.urandom(1024) for i in range(5)}
    objects["one-block"] = os.urandom(3 * MiB)
    objects["multi-block"] = os.urandom(13 * MiB + 11)
    for key, data in objects.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    return {key: hashlib.sha256(data).hexdigest() for key, data in objects.items()}



@pytest.fixture(scope="module")
def degraded() -> dict[str, str]:
    return {}


def read_all(s3, stored: dict[str, str]) -> None:
    """Every object whole, and a range inside each large one (the partial-block path)."""
    for key, digest in stored.items():
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == digest, key
        if len(body) > MiB:
            part = s3.get_object(Bucket=BUCKET, Key=key, Range="bytes=1048000-1114000")
            assert part["Body"].read() == body[1048000:1114001], key


def all_nodes_back(cluster) -> None:
    """Restart every node a step killed and wait until gossip shows them all alive."""
    for name in list(cluster.killed):
        cluster.restart_node(name)
    wait_healthy(cluster.endpoint, cluster.nodes, timeout=60)


def write(s3, stored: dict[str, str], key: str, size: int) -> None:
    data = os.urandom(size)
    s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    stored[key] = hashlib.sha256(data).hexdigest()


def acknowledged(bodies: dict[str, bytes], etags: dict[str, str]) -> dict[str, str]:
    """{key: sha256} of uploads that were each acknowledged with the MD5 of the whole
    body as ETag (its blocks were digested in order)."""
    for key, data in bodies.items():
        assert etags[key] == f'"{hashlib.md5(data).hexdigest()}"', key
    return {key: hashlib.sha256(data).hexdigest() for key, data in bodies.items()}


def test_an_owner_stopped_through_overwrites_never_serves_old_bytes(cluster, s3, stored):
    """SIGSTOP the first metadata owner of a key (the one reads ask first) and overwrite
    the key twice, the second time after the gateway's call to it has timed out (so that
    write may never reach it). Reads while it is stopped, and after it wakes with its
    stale copy (outvoted by the newer clock, or caught up by anti-entropy first), return
    the newest bytes; its copy ends up current."""
    admin = AdminClient(*locate(cluster.data))
    key = "overwritten-while-stopped"
    write(s3, stored, key, 2000)
    first_owner = next(iter(admin.object_health(BUCKET, key)["metadata"]))

    def newest_reads(count: int) -> None:
        for _ in range(count):
            body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            assert hashlib.sha256(body).hexdigest() == stored[key]
            time.sleep(0.1)

    cluster.signal_node(first_owner, signal.SIGSTOP)
    try:
        write(s3, stored, key, 3000)
        time.sleep(6)  # past the node client's 5 s timeout
        write(s3, stored, key, 4000)
        newest_reads(3)
    finally:
        cluster.signal_node(first_owner, signal.SIGCONT)
    newest_reads(30)
    assert wait_until(lambda: set(admin.object_health(BUCKET, key)["metadata"].values())
                      == {"current"}, 60)


def test_an_owner_stopped_through_deletes_never_lists_them(cluster, s3):
    """Owners leave tombstones out of listing scans, and a key they disagree on is settled
    by a quorum read. SIGSTOP the first owner (the one reads ask first) and delete most of
    a prefix, all but the first delete after its calls timed out: no listing shows a
    deleted key, paged two keys at a time, neither while it is stopped nor once it wakes
    with live copies of them (settled by quorum reads, or caught up by its anti-entropy
    first; tests/cluster/test_owner_disagreement.py plants the disagreement itself)."""
    admin = AdminClient(*locate(cluster.data))
    bucket, prefix = "faults-listing", "listed-while-stopped/"  # the later steps list BUCKET
    s3.create_bucket(Bucket=bucket)
    names = [f"{prefix}{i:02d}" for i in range(12)]
    for name in names:  # stored inline, with a body large enough for scans to cut off
        s3.put_object(Bucket=bucket, Key=name, Body=b"x" * 3000)
    kept = names[::3]
    first_owner = next(iter(admin.object_health(bucket, names[0])["metadata"]))

    def listed() -> list[str]:
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": 2})
        shown = [(o["Key"], o["Size"]) for page in pages for o in page.get("Contents", [])]
        assert {size for _, size in shown} <= {3000}
        return [key for key, _ in shown]

    doomed = [name for name in names if name not in kept]
    cluster.signal_node(first_owner, signal.SIGSTOP)
    try:
        s3.delete_object(Bucket=bucket, Key=doomed[0])
        time.sleep(6)  # past the node client's 5 s timeout: later deletes never reach it
        for name in doomed[1:]:
            s3.delete_object(Bucket=bucket, Key=name)
        assert listed() == kept
    finally:
        cluster.signal_node(first_owner, signal.SIGCONT)
    deadline = time.monotonic() + 8  # past the node client's 2 s down-mark, asked again
    while time.monotonic() < deadline:
        assert listed() == kept
        time.sleep(0.2)


def test_hung_node_costs_a_timeout_not_a_stall(cluster, s3, stored, degraded):
    victim = "node-2"
    cluster.signal_node(victim, signal.SIGSTOP)
    try:
        read_all(s3, stored)
        write(s3, degraded, "during-sigstop", 5 * MiB)
        read_all(s3, degraded)
    finally:
        cluster.signal_node(victim, signal.SIGCONT)


def test_two_nodes_killed_reads_and_writes_go_on(cluster, s3, stored, degraded):
    owner = cluster.metadata_owners(BUCKET)[0]
    other = next(n for n in cluster.node_pids() if n not in cluster.metadata_owners(BUCKET))
    cluster.kill_node(owner)
    cluster.kill_node(other)
    read_all(s3, stored)
    # Fewer live nodes than k+m: shards double up on the survivors.
    written: dict[str, str] = {}
    write(s3, written, "two-down/small", 2048)
    write(s3, written, "two-down/big", 9 * MiB)
    read_all(s3, stored)
    read_all(s3, written)
    degraded.update(written)
    cluster.restart_node(owner)
    cluster.restart_node(other)
    wait_healthy(cluster.endpoint, cluster.nodes, timeout=60)
    read_all(s3, stored)


def test_two_metadata_owners_killed_reads_go_on(cluster, s3, stored, degraded):
    first, second, _ = cluster.metadata_owners(BUCKET)
    cluster.kill_node(first)
    cluster.kill_node(second)
    read_all(s3, stored)
    listed = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    # Past R - W owners down the listing is served by one owner: it holds everything
    # written while all owners were up; records written while one was down reach the
    # others only through handoff (issue "Elastic and self-healing").
    assert set(stored) <= listed <= set(stored) | set(degraded)


def test_more_than_m_down_is_a_clean_503(cluster, s3, stored):
    alive = [n for n in cluster.node_pids() if n not in cluster.killed]
    cluster.kill_node(alive[0])  # three of six down now
    for key, digest in stored.items():
        try:
            body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        except ClientError as err:
            assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 503, key
            assert err.response["Error"]["Code"] == "ServiceUnavailable"
            continue
        # Inline objects can still be served from a surviving metadata owner; what is
        # served is never wrong.
        assert hashlib.sha256(body).hexdigest() == digest, key
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=BUCKET, Key="multi-block")["Body"].read()
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503


def test_everything_back_when_nodes_return(cluster, s3, stored, degraded):
    all_nodes_back(cluster)
    read_all(s3, stored)
    read_all(s3, degraded)
    write(s3, stored, "after-recovery", 6 * MiB)
    read_all(s3, stored)


def test_concurrent_reads_survive_a_kill(cluster, s3, stored):
    """SIGKILL while GETs of multi-block objects are in flight: every read completes."""
    errors: list[str] = []

    def reader() -> None:
        for _ in range(3):
            try:
                read_all(s3, stored)
            except AssertionError as err:
                errors.append(str(err))
            except Exception as err:  # one node down is within m: nothing may fail
                errors.append(repr(err))

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    cluster.kill_node("node-5")
    for t in threads:
        t.join()
    assert errors == []
    read_all(s3, stored)


class _CountingBody(io.BytesIO):
    """An upload body that counts how often a reader went past byte ``at``, and sets
    ``reached`` on the pass after the first ``skip`` (botocore reads a body to hash it
    before it sends it)."""

    def __init__(self, data: bytes, at: int, reached: threading.Event | None = None,
                 skip: int = 0) -> None:
        super().__init__(data)
        self.at, self.reached, self.skip, self.crossings = at, reached, skip, 0

    def read(self, size: int | None = -1) -> bytes:
        before = self.tell()
        chunk = super().read(size)
        if before < self.at <= self.tell():
            self.crossings += 1
            if self.reached is not None and self.crossings > self.skip:
                self.reached.set()
        return chunk


def test_concurrent_uploads_survive_a_kill(cluster, s3, stored, degraded):
    """SIGKILL while multi-block PUTs stream: blocks are being received, encoded and sent
    at once. Every PUT is acknowledged with the MD5 of its whole body as ETag (its
    blocks were digested in order) and reads back byte-identical. Blocks sent after the
    kill doubled up on a survivor: the uploads join ``degraded``."""
    all_nodes_back(cluster)
    probe = _CountingBody(os.urandom(10 * MiB), 9 * MiB)
    s3.put_object(Bucket=BUCKET, Key="uploads/probe", Body=probe)
    hashing_passes = probe.crossings - 1  # the last pass is the one that sends
    mid_body = threading.Event()
    bodies = {f"uploads/{i}": os.urandom(22 * MiB + i) for i in range(3)}
    etags: dict[str, str] = {}
    errors: list[str] = []

    def upload(key: str) -> None:
        try:
            body = _CountingBody(bodies[key], 9 * MiB, mid_body, hashing_passes)
            etags[key] = s3.put_object(Bucket=BUCKET, Key=key, Body=body)["ETag"]
        except Exception as err:  # one node down is within m: nothing may fail
            errors.append(f"{key}: {err!r}")

    threads = [threading.Thread(target=upload, args=(key,)) for key in bodies]
    for t in threads:
        t.start()
    assert mid_body.wait(60)  # 9 MiB of a body went to the gateway
    cluster.kill_node("node-4")
    for t in threads:
        t.join()
    assert errors == []
    uploaded = acknowledged(bodies, etags)
    read_all(s3, stored)
    read_all(s3, uploaded)
    degraded.update(uploaded)


def test_uploads_queued_behind_a_hung_node_all_land(cluster, s3, stored, degraded):
    """A gateway's uploads share one budget of block bytes in flight (gateway/budget.py).
    SIGSTOP a node, then start more large PUTs than the budget holds: the blocks in
    flight stall until the hung node times out, and the rest wait for room. Every PUT is
    acknowledged with its MD5 and reads back byte-identical, and afterwards nothing is
    left counted in flight: a leak would stall every later upload on this gateway."""
    all_nodes_back(cluster)
    admin = AdminClient(*locate(cluster.data))
    # 96 MiB of blocks wanted at once (three in flight per upload), three times the budget
    bodies = {f"budget/{i}": os.urandom(12 * MiB + i) for i in range(8)}
    etags: dict[str, str] = {}
    errors: list[str] = []

    def upload(key: str) -> None:
        try:
            etags[key] = s3.put_object(Bucket=BUCKET, Key=key, Body=bodies[key])["ETag"]
        except Exception as err:  # one node hung is within m: nothing may fail
            errors.append(f"{key}: {err!r}")

    threads = [threading.Thread(target=upload, args=(key,)) for key in bodies]
    cluster.signal_node("node-3", signal.SIGSTOP)
    try:
        for t in threads:
            t.start()
        assert wait_until(lambda: admin.status()["gateway"]["writes_waiting"] > 0, 30)
        for t in threads:
            t.join(120)
            assert not t.is_alive(), "an upload never finished"
    finally:
        cluster.signal_node("node-3", signal.SIGCONT)
    assert errors == []
    gateway = admin.status()["gateway"]
    assert (gateway["writes_in_flight_bytes"], gateway["writes_waiting"]) == (0, 0)
    uploaded = acknowledged(bodies, etags)
    read_all(s3, uploaded)
    read_all(s3, stored)
    degraded.update(uploaded)


def restart_while_failing(cluster, names: list[str], attempt: Callable[[], object]) -> None:
    """SIGKILL the nodes ``names``: ``attempt`` (an S3 call that needs them) fails with a
    clean 503, and the gateway marks them down (connection refused). Restart them,
    calling ``attempt`` meanwhile (it fails, keeping the marks fresh), and return the
    moment their node APIs answer."""
    specs = {}
    for name in names:
        cluster.kill_node(name)
        specs[name] = cluster.killed.pop(name)
    with pytest.raises(ClientError) as info:
        attempt()
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    for spec in specs.values():
        cluster.respawn(spec)
    deadline = time.monotonic() + 60
    while not all(spec_answers(spec) for spec in specs.values()):
        assert time.monotonic() < deadline, "restarted nodes did not answer"
        with contextlib.suppress(ClientError):
            attempt()
        time.sleep(0.05)


def test_restarted_owners_answer_the_first_read(cluster, stored):
    """Every metadata owner of the bucket SIGKILLed: reads fail with a clean 503 and the
    gateway marks the owners down (connection refused). The moment their node APIs
    answer again, a read must succeed: owners marked down for a refused connection are
    asked again when nobody else answered. No client retries: the gateway alone must
    get this right."""
    all_nodes_back(cluster)
    s3 = cluster.client(retries={"max_attempts": 1, "mode": "standard"})
    restart_while_failing(cluster, cluster.metadata_owners(BUCKET),
                          lambda: s3.head_object(Bucket=BUCKET, Key="one-block"))
    read_all(s3, stored)


def test_restarted_owners_take_the_first_write(cluster, stored):
    """Two of the bucket's three metadata owners SIGKILLed: a write reaches 1 of the 2
    owners it needs, a clean 503, and the gateway marks them down (connection refused).
    The moment their node APIs answer again, a write must succeed, not wait out the
    breaker's cooldown. No client retries."""
    all_nodes_back(cluster)
    s3 = cluster.client(retries={"max_attempts": 1, "mode": "standard"})
    key, data = "written-after-restart", os.urandom(1000)  # inline: a metadata write only
    restart_while_failing(cluster, cluster.metadata_owners(BUCKET)[:2],
                          lambda: s3.put_object(Bucket=BUCKET, Key=key, Body=data))
    s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    stored[key] = hashlib.sha256(data).hexdigest()
    read_all(s3, stored)


def test_a_read_streaming_through_a_kill_is_byte_identical(cluster, s3, stored):
    """A GET sends each block on as the views of its data shards that came from the
    nodes. SIGKILL the node holding the last block's first data shard once the client
    has the first MiB: the blocks before it went out as received, the last one is
    rebuilt from parity, and the body is byte-identical."""
    all_nodes_back(cluster)
    # 11 blocks: far more than the gateway fetches ahead or the sockets buffer.
    write(s3, stored, "streamed", 40 * MiB + 7)
    admin = AdminClient(*locate(cluster.data))
    last = admin.object_health(BUCKET, "streamed")["blocks"][-1]
    victim = last["slots"][0]["node"]
    body = s3.get_object(Bucket=BUCKET, Key="streamed")["Body"]
    head = body.read(MiB)
    cluster.kill_node(victim)
    rest = body.read()
    assert hashlib.sha256(head + rest).hexdigest() == stored["streamed"]
    read_all(s3, stored)


def test_stalled_readers_share_the_read_ahead_and_survive_a_kill(cluster, s3, stored):
    """Six GETs of an 11-block object, each stalled by its client after the first MiB:
    together they hold the gateway's read-ahead budget (16 MiB: four of them a block
    ahead, not all six). SIGKILL a node under them and read on: every body is
    byte-identical, and once they are done nothing is counted as read ahead."""
    all_nodes_back(cluster)
    write(s3, stored, "read-ahead", 40 * MiB + 3)
    admin = AdminClient(*locate(cluster.data))

    def read_ahead() -> tuple[int, int]:
        gateway = admin.status()["gateway"]
        return gateway["read_ahead_bytes"], gateway["read_ahead_budget_bytes"]

    bodies = [s3.get_object(Bucket=BUCKET, Key="read-ahead")["Body"] for _ in range(6)]
    heads = [body.read(MiB) for body in bodies]
    assert wait_until(lambda: read_ahead() == (16 * MiB, 16 * MiB), 10), read_ahead()
    cluster.kill_node("node-2")
    for head, body in zip(heads, bodies, strict=True):
        assert hashlib.sha256(head + body.read()).hexdigest() == stored["read-ahead"]
    assert wait_until(lambda: read_ahead()[0] == 0, 10), read_ahead()
    read_all(s3, stored)
