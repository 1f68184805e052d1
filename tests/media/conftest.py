import uuid

import pytest

from tests.harness import ShoalCluster


@pytest.fixture(scope="package")
def media_cluster(tmp_path_factory):
    """One 3-node cluster with a website endpoint, shared by the tests/media modules."""
    c = ShoalCluster(tmp_path_factory.mktemp("media") / "data", nodes=3, zones=3, website=True)
    c.start()
    yield c
    c.stop()


@pytest.fixture
def s3(media_cluster):
    return media_cluster.client()


@pytest.fixture
def bucket(s3) -> str:
    """A fresh, private bucket for one test."""
    name = f"m-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name
