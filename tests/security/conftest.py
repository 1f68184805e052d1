"""Fixtures for the security tests: small real clusters, the admin client, key clients."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config

from gateway.adminclient import AdminClient, locate
from tests.harness import ShoalCluster


@pytest.fixture(scope="module")
def small_cluster(tmp_path_factory):
    """Three nodes in three zones: enough for 2+1 over zones, light on a shared machine."""
    c = ShoalCluster(tmp_path_factory.mktemp("sec") / "data", nodes=3, zones=3)
    c.start()
    yield c
    c.stop()


def admin_of(cluster: ShoalCluster) -> AdminClient:
    return AdminClient(*locate(cluster.data))


def s3_as(cluster: ShoalCluster, access_key: str, secret_key: str):  # noqa: ANN201
    return boto3.client(
        "s3", endpoint_url=cluster.endpoint, region_name="us-east-1",
        aws_access_key_id=access_key, aws_secret_access_key=secret_key,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                      signature_version="s3v4"))


