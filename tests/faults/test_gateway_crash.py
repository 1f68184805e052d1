"""A gateway killed mid-upload: nothing half-written becomes visible, service goes on.

The upload is sent over a raw socket from a presigned PUT URL, so the test decides
exactly how many bytes the gateway has received when it is SIGKILLed.
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

from tests.harness import cmdlines, process_spec, wait_healthy, wait_until

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
