"""The gateway's admin API: bearer-token auth and the per-object shard-health report."""

from __future__ import annotations

import json
import os

import pytest

from tests.harness import http

MiB = 1024 * 1024
BUCKET = "admin"


def admin_token(cluster) -> str:
    return json.loads((cluster.data / "cluster.json").read_text())["admin_token"]


def admin_get(cluster, path: str, token: str | None = None) -> tuple[int, dict]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    status, _, body = http("GET", cluster.endpoint + "/_shoal/admin/" + path, headers=headers)
    return status, json.loads(body)


@pytest.fixture(scope="module")
def s3(cluster):
    client = cluster.client()
    client.create_bucket(Bucket=BUCKET)
    return client


def test_admin_needs_the_token(cluster, s3):
    s3.put_object(Bucket=BUCKET, Key="k", Body=b"x")
    assert admin_get(cluster, f"objects/{BUCKET}/k")[0] == 401
    assert admin_get(cluster, f"objects/{BUCKET}/k", "not-the-token")[0] == 403
    status, _ = admin_get(cluster, "repair", "x" * 64)
    assert status == 403


def test_fresh_object_is_at_full_redundancy(cluster, s3):
    data = os.urandom(9 * MiB)
    s3.put_object(Bucket=BUCKET, Key="dir/big object", Body=data)
    status, report = admin_get(cluster, f"objects/{BUCKET}/dir/big%20object",
                               admin_token(cluster))
    assert status == 200, report
    assert len(report["blocks"]) == 3
    for b in report["blocks"]:
        assert [s["state"] for s in b["slots"]] == ["ok"] * 6
        assert len({s["node"] for s in b["slots"]}) == 6
        assert b["zones_used"] == 3
    assert report["data_full"] and report["full"] and report["metadata_full"], report
    assert set(report["metadata"].values()) == {"current"}


def test_unknown_object_is_404(cluster, s3):
    status, report = admin_get(cluster, f"objects/{BUCKET}/nope", admin_token(cluster))
    assert status == 404 and report["error"] == "NoSuchKey"
