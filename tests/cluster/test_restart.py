"""A whole cluster stopped with SIGTERM and started again on the same data directory.

The story: write inline, multi-block and multipart objects (and leave one multipart
upload open, and delete one object), stop `shoal up`, check that none of its processes
survive, start it again with a fresh harness object that knows nothing but the data
directory. The same credentials come back, every object reads back byte-identical with
its metadata, the deleted one stays deleted, listings are complete, and the open upload
can still be completed. Cold-start seconds are printed, never asserted.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from tests.harness import ShoalCluster, cmdlines

pytestmark = pytest.mark.timeout(240)

MiB = 1024 * 1024
NODES, ZONES = 6, 3
BUCKETS = ("restart-data", "restart-empty")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def processes_of(data: Path) -> dict[int, str]:
    """Live processes whose command line names this cluster's data directory."""
    return {pid: " ".join(argv) for pid, argv in cmdlines().items()
            if str(data) in " ".join(argv)}


def list_all_keys(s3, bucket: str, page: int = 7) -> list[str]:  # noqa: ANN001
    """Every key, through small pages so continuation tokens are exercised too."""
    keys: list[str] = []
    kwargs = {"Bucket": bucket, "MaxKeys": page}
    while True:
        resp = s3.list_objects_v2(**kwargs)
        keys += [o["Key"] for o in resp.get("Contents", [])]
        if not resp["IsTruncated"]:
            return keys
        kwargs["ContinuationToken"] = resp["NextContinuationToken"]


def write_objects(cluster: ShoalCluster) -> tuple[dict[str, bytes], str, str]:
    """Returns ({key: body} in restart-data, the deleted key, an open upload id)."""
    s3 = cluster.client()
    for name in BUCKETS:
        s3.create_bucket(Bucket=name)
    bodies: dict[str, bytes] = {}
    for i, size in enumerate([0, 1, 100, 4096, 32 * 1024]):  # inline: up to 32 KiB
        bodies[f"inline/{i:02d}-{size}"] = os.urandom(size)
    for i in range(20):
        bodies[f"many/key {i:03d} ünï+"] = os.urandom(i * 97)
    bodies["big/ten-mib"] = os.urandom(10 * MiB)  # three 4 MiB blocks, the last partial
    for key, body in bodies.items():
        s3.put_object(Bucket="restart-data", Key=key, Body=body,
                      ContentType="application/x-test", Metadata={"sha": sha(body)[:16]})

    multipart = os.urandom(12 * MiB)
    s3.upload_fileobj(io.BytesIO(multipart), "restart-data", "big/multipart",
                      Config=TransferConfig(multipart_threshold=5 * MiB,
                                            multipart_chunksize=5 * MiB, use_threads=False))
    bodies["big/multipart"] = multipart
    assert s3.head_object(Bucket="restart-data", Key="big/multipart")["ETag"].endswith('-3"')

    s3.put_object(Bucket="restart-data", Key="gone", Body=b"deleted before the restart")
    s3.delete_object(Bucket="restart-data", Key="gone")

    upload = s3.create_multipart_upload(Bucket="restart-data", Key="open/upload")["UploadId"]
    return bodies, "gone", upload


def test_cluster_restarts_with_every_object(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = ShoalCluster(data, nodes=NODES, zones=ZONES)
    try:
        print(f"cold start (empty data dir): {first.start():.2f} s")
        assert len(first.node_pids()) == NODES
        bodies, deleted, upload_id = write_objects(first)
        part1 = os.urandom(5 * MiB)
        etag1 = first.client().upload_part(Bucket="restart-data", Key="open/upload",
                                           UploadId=upload_id, PartNumber=1,
                                           Body=part1)["ETag"]
    finally:
        first.stop()

    assert first.node_pids() == {}, "shoal node processes survived SIGTERM"
    assert processes_of(data) == {}, "processes of the stopped cluster survived"

    second = ShoalCluster(data, nodes=NODES, zones=ZONES)
    try:
        print(f"cold start (same data dir): {second.start():.2f} s")
        assert (second.access_key, second.secret_key) == (first.access_key, first.secret_key)
        s3 = second.client()

        names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
        assert names == set(BUCKETS)
        assert list_all_keys(s3, "restart-empty") == []
        assert list_all_keys(s3, "restart-data") == sorted(bodies)

        for key, body in bodies.items():
            got = s3.get_object(Bucket="restart-data", Key=key)
            assert got["ContentLength"] == len(body), key
            assert sha(got["Body"].read()) == sha(body), key
            if key != "big/multipart":
                assert got["ContentType"] == "application/x-test", key
                assert got["Metadata"] == {"sha": sha(body)[:16]}, key
        ranged = s3.get_object(Bucket="restart-data", Key="big/ten-mib",
                               Range=f"bytes={4 * MiB - 10}-{8 * MiB + 9}")["Body"].read()
        assert ranged == bodies["big/ten-mib"][4 * MiB - 10:8 * MiB + 10]

        with pytest.raises(ClientError) as err:
            s3.get_object(Bucket="restart-data", Key=deleted)
        assert err.value.response["Error"]["Code"] == "NoSuchKey"

        # The upload left open before the stop is still there, with its part.
        uploads = s3.list_multipart_uploads(Bucket="restart-data").get("Uploads", [])
        assert [(u["Key"], u["UploadId"]) for u in uploads] == [("open/upload", upload_id)]
        parts = s3.list_parts(Bucket="restart-data", Key="open/upload", UploadId=upload_id)
        assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in parts["Parts"]] == [
            (1, etag1, len(part1))]
        tail = os.urandom(1000)
        etag2 = s3.upload_part(Bucket="restart-data", Key="open/upload", UploadId=upload_id,
                               PartNumber=2, Body=tail)["ETag"]
        s3.complete_multipart_upload(
            Bucket="restart-data", Key="open/upload", UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag1},
                                       {"PartNumber": 2, "ETag": etag2}]})
        body = s3.get_object(Bucket="restart-data", Key="open/upload")["Body"].read()
        assert sha(body) == sha(part1 + tail)
    finally:
        second.stop()
    assert processes_of(data) == {}
