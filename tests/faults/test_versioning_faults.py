"""A versioned bucket loses one of its metadata owners (SIGKILL): no version is lost.

Versions (inline and block-stored) and a delete marker are written on a healthy 6-node
cluster; then one of the three owners of the bucket's partition is killed. Every
version must still be listed, in order, with the right IsLatest, and read back
byte-identical by its version id; new versions keep being accepted and listed.
"""

from __future__ import annotations

import hashlib
import os

import pytest
from botocore.exceptions import ClientError

BUCKET = "versions-under-fault"
KiB = 1024



def listing(s3) -> list[tuple[str, str, bool, bool]]:
    out = s3.list_object_versions(Bucket=BUCKET)
    rows = [(v["Key"], v["VersionId"], v["IsLatest"], False) for v in out.get("Versions", [])]
    rows += [(m["Key"], m["VersionId"], m["IsLatest"], True)
             for m in out.get("DeleteMarkers", [])]
    return sorted(rows)


def test_versions_survive_a_metadata_owner_kill(cluster):
    s3 = cluster.client()
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    digests: dict[tuple[str, str], str] = {}  # (key, version id) -> sha256 of the body
    latest: dict[str, str] = {}
    for key, sizes in {"small": [100, 200, 300], "big": [200 * KiB, 300 * KiB],
                       "gone": [1 * KiB]}.items():
        for size in sizes:
            body = os.urandom(size)
            vid = s3.put_object(Bucket=BUCKET, Key=key, Body=body)["VersionId"]
            digests[(key, vid)] = hashlib.sha256(body).hexdigest()
            latest[key] = vid
    marker = s3.delete_object(Bucket=BUCKET, Key="gone")["VersionId"]
    expected = sorted([(k, v, latest[k] == v, False) for k, v in digests if k != "gone"]
                      + [("gone", next(v for k, v in digests if k == "gone"), False, False),
                         ("gone", marker, True, True)])
    assert listing(s3) == expected

    victim = cluster.metadata_owners(BUCKET)[0]
    cluster.kill_node(victim)

    assert listing(s3) == expected
    for (key, vid), digest in digests.items():
        body = s3.get_object(Bucket=BUCKET, Key=key, VersionId=vid)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == digest, (key, vid)
    assert s3.get_object(Bucket=BUCKET, Key="big")["VersionId"] == latest["big"]
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=BUCKET, Key="gone")
    headers = info.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amz-delete-marker"] == "true" and headers["x-amz-version-id"] == marker

    # Writes go on with one owner down (W=2 of 3), and are listed at once.
    body = os.urandom(5 * KiB)
    vid = s3.put_object(Bucket=BUCKET, Key="small", Body=body)["VersionId"]
    rows = listing(s3)
    assert ("small", vid, True, False) in rows and len(rows) == len(expected) + 1
    assert s3.get_object(Bucket=BUCKET, Key="small")["Body"].read() == body
