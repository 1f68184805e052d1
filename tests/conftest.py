import pytest

from tests.harness import ShoalCluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One 6-node, 3-zone cluster per test module (started by `shoal up`)."""
    c = ShoalCluster(tmp_path_factory.mktemp("shoal") / "data", nodes=6, zones=3)
    c.start()
    yield c
    c.stop()
