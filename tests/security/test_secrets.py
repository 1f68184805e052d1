"""No secret in any log file or command line of a cluster that served requests, failed
authentication included; stored access-key secrets are sealed on disk.

(A gateway or node without the gossip key cannot join: tests/cluster/test_membership.py
``test_agent_with_another_gossip_key_cannot_join``.)
"""

from __future__ import annotations

import base64
import json
import os

from botocore.exceptions import ClientError

from cluster.nodeauth import content_hash, sign
from tests.harness import cmdlines, error_of, http
from tests.security.conftest import admin_of, s3_as


def test_no_secret_reaches_a_log_file_or_a_command_line(small_cluster):
    ident = json.loads((small_cluster.data / "cluster.json").read_text())
    admin = admin_of(small_cluster)
    s3 = small_cluster.client()
    key = admin.create_key("logs")
    customer_key = os.urandom(32)
    secrets = {
        "cluster secret": ident["cluster_secret"], "gossip key": ident["gossip_key"],
        "rpc token": ident["rpc_token"], "bootstrap S3 secret": ident["secret_key"],
        "admin token": ident["admin_token"], "stored S3 secret": key["secret_key"],
        "SSE-C key": base64.b64encode(customer_key).decode(),
    }

    # Requests that succeed...
    s3.create_bucket(Bucket="logged")
    admin.allow(key["access_key"], "logged", "write")
    user = s3_as(small_cluster, key["access_key"], key["secret_key"])
    user.put_object(Bucket="logged", Key="k", Body=b"v" * 50_000)
    s3.put_object(Bucket="logged", Key="c", Body=b"c", SSECustomerAlgorithm="AES256",
                  SSECustomerKey=customer_key)
    # ...and requests that fail authentication or authorization.
    for access_key in (key["access_key"], ident["access_key"], "NOSUCHKEY"):
        wrong = s3_as(small_cluster, access_key, "not-the-secret")
        assert error_of(wrong.list_objects_v2, Bucket="logged")[1] == 403
    assert error_of(s3.get_object, Bucket="logged", Key="c", SSECustomerAlgorithm="AES256",
                    SSECustomerKey=os.urandom(32)) == ("AccessDenied", 403)
    assert error_of(user.delete_bucket, Bucket="logged") == ("AccessDenied", 403)
    for token in ("wrong", ident["admin_token"] + "x", ""):
        status, _, _ = http("GET", small_cluster.endpoint + "/_shoal/admin/status",
                            headers={"Authorization": f"Bearer {token}"})
        assert status == 403
    node_api = admin.status()["nodes"][0]["api"]
    bad = sign(b"wrong secret", "GET", "/health", content_hash(b""))
    assert http("GET", node_api + "/health", headers=bad)[0] == 403
    assert http("GET", node_api + "/health")[0] == 403
    try:
        user.get_object(Bucket="logged", Key="missing")
    except ClientError:
        pass

    logs = [small_cluster.data.with_suffix(".up.log"), *small_cluster.data.rglob("*.log")]
    texts = {str(p): p.read_text(errors="replace") for p in logs if p.is_file()}
    assert any(texts.values()), "the cluster wrote no log at all"
    for path, text in texts.items():
        for what, value in secrets.items():
            assert value not in text, f"{what} appears in {path}"
    ours = [argv for argv in cmdlines().values() if str(small_cluster.data) in " ".join(argv)]
    assert ours
    for argv in ours:
        for what, value in secrets.items():
            assert value not in " ".join(argv), f"{what} appears on a command line"

    # Access-key secrets are sealed at rest: neither stored secret is on any node's disk.
    for node in small_cluster.data.glob("node-*"):
        for path in node.rglob("*"):
            if path.is_file():
                content = path.read_bytes()
                assert key["secret_key"].encode() not in content, path
                assert ident["admin_token"].encode() not in content, path
