"""Uploads cut off mid-body: nothing half-written becomes visible, service goes on.

The upload is sent over a raw socket from a presigned PUT URL, so the test decides
exactly how many bytes the gateway has received when its client hangs up or the
gateway is SIGKILLed.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import signal
import time
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from gateway.adminclient import AdminClient, locate
from tests.harness import cmdlines, process_spec, wait_healthy, wait_until
from tests.s3.signed import signed

MiB = 1024 * 1024
SIZE = 100 * MiB
BUCKET = "gwcrash"


def main_gateway_pids(cluster) -> list[int]:
    """The `shoal gateway --name gateway-1` process started by `shoal up`."""
    return [pid for pid, argv in cmdlines().items()
            if "gateway" in argv and "gateway-1" in argv and str(cluster.data) in " ".join(argv)]


def start_upload(url: str) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.putrequest("PUT", f"{parts.path}?{parts.query}", skip_accept_encoding=True)
    conn.putheader("Content-Length", str(SIZE))
    conn.endheaders()
    return conn


def send(conn: http.client.HTTPConnection, piece: bytes, count: int) -> bool:
    """Send ``count`` pieces; False once the gateway is gone."""
    try:
        for _ in range(count):
            conn.send(piece)
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def gateways(cluster):
    """(first gateway's client, second gateway's client): the second survives the kill.

    `shoal up` leaves a dead child dead, so the first gateway's command line and
    environment are kept to start it again."""
    second = cluster.start_gateway()
    first = cluster.client()
    first.create_bucket(Bucket=BUCKET)
    cluster.gateway_spec = process_spec(main_gateway_pids(cluster)[0])
    return first, cluster.client(second)


def presigned_put(cluster, key: str) -> str:
    v4 = cluster.client(signature_version="s3v4")
    return v4.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": key})


def left_nothing(cluster, s3, keys: list[str]) -> None:
    """Failed uploads of ``keys`` gave every block byte back to the gateway's write
    budget, and none of them is an object."""
    admin = AdminClient(*locate(cluster.data))
    assert wait_until(lambda: admin.status()["gateway"]["writes_in_flight_bytes"] == 0, 30)
    for key in keys:
        with pytest.raises(ClientError) as info:
            s3.head_object(Bucket=BUCKET, Key=key)
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_clients_hanging_up_mid_body_leave_nothing_and_hold_no_budget(cluster, gateways):
    """Clients hang up at block boundaries and between them: no object appears, and the
    blocks they had in flight give their bytes back to the gateway's write budget. (At a
    boundary a block's task can be cancelled before it ever ran; a leak would leave
    every later upload on this gateway waiting for room.)"""
    first, _ = gateways
    piece = os.urandom(MiB)
    cuts = (4, 8, 9, 12, 13)  # MiB sent of the SIZE announced; blocks are 4 MiB
    for cut in cuts:
        conn = start_upload(presigned_put(cluster, f"hung-up-{cut}"))
        assert send(conn, piece, cut)
        conn.close()
    left_nothing(cluster, first, [f"hung-up-{cut}" for cut in cuts])


def test_a_malformed_chunk_right_after_a_block_leaves_nothing(cluster, gateways):
    """An aws-chunked body whose second chunk header is not hex, right after a whole 4 MiB
    block: the decoder fails in the same step that handed the block over, so the upload
    is aborted before the block's task ever ran. The client gets InvalidChunkSizeError (403
    in S3's table), no object appears, and the block's bytes go back to the write budget."""
    first, _ = gateways
    data = os.urandom(4 * MiB)
    body = b"%x\r\n" % len(data) + data + b"\r\nzz\r\n" + b"x" * 64
    for attempt in range(5):
        status, _, answer = signed(cluster, "PUT", f"/{BUCKET}/bad-chunk-{attempt}", body, {
            "content-encoding": "aws-chunked", "x-amz-decoded-content-length": str(8 * MiB),
            "x-amz-trailer": "x-amz-checksum-crc32"}, payload="STREAMING-UNSIGNED-PAYLOAD-TRAILER")
        assert status == 403 and b"<Code>InvalidChunkSizeError</Code>" in answer, answer
    left_nothing(cluster, first, [f"bad-chunk-{attempt}" for attempt in range(5)])


def test_gateway_killed_mid_upload_leaves_no_object(cluster, gateways):
    first, second = gateways
    piece = os.urandom(MiB)
    conn = start_upload(presigned_put(cluster, "cut-mid-body"))
    assert send(conn, piece, 40)
    time.sleep(1)  # let the gateway encode and store the blocks it has
    for pid in main_gateway_pids(cluster):
        os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: not main_gateway_pids(cluster), 10)
    assert not send(conn, piece, 60), "the killed gateway kept accepting bytes"
    with pytest.raises(ClientError) as info:
        second.head_object(Bucket=BUCKET, Key="cut-mid-body")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    listed = second.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    assert "cut-mid-body" not in [o["Key"] for o in listed]
    # The cluster keeps serving through the second gateway.
    data = os.urandom(12 * MiB)
    second.put_object(Bucket=BUCKET, Key="after-crash", Body=data)
    assert second.get_object(Bucket=BUCKET, Key="after-crash")["Body"].read() == data


def test_gateway_killed_after_last_byte_is_all_or_nothing(cluster, gateways):
    """Killed while blocks and metadata are being committed: absent or whole, never partial."""
    _, second = gateways
    if not main_gateway_pids(cluster):
        cluster.respawn(cluster.gateway_spec)
        wait_healthy(cluster.endpoint, cluster.nodes)
    piece = os.urandom(MiB)
    digest = hashlib.sha256(piece * 100).hexdigest()
    conn = start_upload(presigned_put(cluster, "cut-at-end"))
    assert send(conn, piece, 100)
    for pid in main_gateway_pids(cluster):
        os.kill(pid, signal.SIGKILL)
    try:
        body = second.get_object(Bucket=BUCKET, Key="cut-at-end")["Body"].read()
    except ClientError as err:
        assert err.response["Error"]["Code"] == "NoSuchKey"
    else:
        assert hashlib.sha256(body).hexdigest() == digest
