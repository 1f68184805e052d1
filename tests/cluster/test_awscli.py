"""The Debian aws CLI v2 against a live 6-node, 3-zone cluster: what a user types.

Every byte that goes up comes back identical (compared by hash, file by file), listings
show the names and sizes that were written, and the errors carry the S3 codes the CLI
prints. The 100 MiB file makes the CLI use multipart upload and ranged parallel GETs.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.harness import ShoalCluster

pytestmark = pytest.mark.timeout(300)

MiB = 1024 * 1024
QUIET = ("--only-show-errors", "--no-progress")


def aws(cluster: ShoalCluster, *args: str) -> str:
    """Run the CLI; a failure shows the CLI's own stderr, not just the exit status."""
    done = cluster.aws(*args, check=False)
    assert done.returncode == 0, f"aws {' '.join(args)} -> {done.returncode}\n{done.stderr}"
    return done.stdout


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(MiB):
            h.update(chunk)
    return h.hexdigest()


def write_random(path: Path, size: int) -> None:
    """`size` random bytes, written 1 MiB at a time so memory stays flat."""
    with path.open("wb") as f:
        left = size
        while left:
            n = min(left, MiB)
            f.write(os.urandom(n))
            left -= n


def ls_objects(cluster: ShoalCluster, uri: str, *flags: str) -> dict[str, int]:
    """`aws s3 ls URI` parsed to {name: size}; names may hold spaces."""
    out = aws(cluster, "s3", "ls", uri, *flags)
    found = {}
    for line in out.splitlines():
        if line.lstrip().startswith("PRE "):
            continue
        _date, _time, size, name = line.split(maxsplit=3)
        found[name] = int(size)
    return found


def ls_buckets(cluster: ShoalCluster) -> set[str]:
    return {line.split(maxsplit=2)[2] for line in aws(cluster, "s3", "ls").splitlines()}


def tree(root: Path) -> dict[str, str]:
    """{relative posix path: sha256} of every regular file under root."""
    return {p.relative_to(root).as_posix(): file_sha256(p)
            for p in root.rglob("*") if p.is_file()}


def make_tree(root: Path, count: int = 200) -> dict[str, int]:
    """`count` files in nested directories with awkward names; returns {path: size}.

    Sizes straddle the gateway's inline limit (32 KiB) and run from 0 to 200 KiB.
    """
    rng = random.Random(20240611)
    dirs = ["", "a", "a/b", "a/b/c d", "ünï cødé", "plus+dir", "deep/er/and/deeper"]
    stems = ["file", "with space", "naïve ☃", "a+b", "résumé", "x"]
    fixed = [0, 1, 1023, 32 * 1024, 32 * 1024 + 1, 200 * 1024]
    sizes: dict[str, int] = {}
    for i in range(count):
        rel = f"{rng.choice(dirs)}/{rng.choice(stems)} {i}.bin".lstrip("/")
        size = fixed[i] if i < len(fixed) else rng.choice(
            [rng.randint(0, 4096), rng.randint(4096, 64 * 1024), rng.randint(0, 200 * 1024)])
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size))
        sizes[rel] = size
    return sizes


def test_cp_small_and_multipart_roundtrip(cluster: ShoalCluster, tmp_path: Path) -> None:
    bucket = "awscli-cp"
    aws(cluster, "s3", "mb", f"s3://{bucket}")
    assert bucket in ls_buckets(cluster)

    small, big = tmp_path / "small.bin", tmp_path / "big.bin"
    write_random(small, 1024)
    write_random(big, 100 * MiB)
    aws(cluster, "s3", "cp", str(small), f"s3://{bucket}/small.bin", *QUIET)
    aws(cluster, "s3", "cp", str(big), f"s3://{bucket}/dir/big.bin", *QUIET)

    assert ls_objects(cluster, f"s3://{bucket}/") == {"small.bin": 1024}  # dir/ is a PRE line
    assert ls_objects(cluster, f"s3://{bucket}/", "--recursive") == {
        "small.bin": 1024, "dir/big.bin": 100 * MiB}
    # The CLI split the upload into parts: S3 marks such an ETag with "-<parts>".
    head = cluster.client().head_object(Bucket=bucket, Key="dir/big.bin")
    assert head["ContentLength"] == 100 * MiB
    assert re.fullmatch(r'"[0-9a-f]{32}-\d+"', head["ETag"]), head["ETag"]

    down = tmp_path / "down"
    down.mkdir()
    aws(cluster, "s3", "cp", f"s3://{bucket}/small.bin", str(down / "small.bin"), *QUIET)
    aws(cluster, "s3", "cp", f"s3://{bucket}/dir/big.bin", str(down / "big.bin"), *QUIET)
    assert file_sha256(down / "small.bin") == file_sha256(small)
    assert file_sha256(down / "big.bin") == file_sha256(big)
    for path in (big, down / "big.bin"):  # pytest keeps old tmp dirs; don't hoard 200 MiB
        path.unlink()

    aws(cluster, "s3", "rm", f"s3://{bucket}", "--recursive", "--only-show-errors")
    aws(cluster, "s3", "rb", f"s3://{bucket}")
    assert bucket not in ls_buckets(cluster)


def test_sync_tree_roundtrip_then_rm_and_rb(cluster: ShoalCluster, tmp_path: Path) -> None:
    bucket = "awscli-sync"
    up, back = tmp_path / "up", tmp_path / "back"
    sizes = make_tree(up)
    assert len(sizes) == 200
    aws(cluster, "s3", "mb", f"s3://{bucket}")

    aws(cluster, "s3", "sync", str(up), f"s3://{bucket}/tree", *QUIET)
    listed = ls_objects(cluster, f"s3://{bucket}/tree/", "--recursive")
    assert listed == {f"tree/{rel}": size for rel, size in sizes.items()}

    aws(cluster, "s3", "sync", f"s3://{bucket}/tree", str(back), *QUIET)
    assert tree(back) == tree(up)

    # A second sync has nothing left to copy either way.
    assert aws(cluster, "s3", "sync", str(up), f"s3://{bucket}/tree").strip() == ""
    assert aws(cluster, "s3", "sync", f"s3://{bucket}/tree", str(back)).strip() == ""

    aws(cluster, "s3", "rm", f"s3://{bucket}", "--recursive", "--only-show-errors")
    assert ls_objects(cluster, f"s3://{bucket}/", "--recursive") == {}
    s3 = cluster.client()
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="tree/")

    aws(cluster, "s3", "rb", f"s3://{bucket}")
    with pytest.raises(ClientError) as err:
        s3.head_bucket(Bucket=bucket)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_s3api_errors_name_the_missing_thing(cluster: ShoalCluster, tmp_path: Path) -> None:
    bucket = "awscli-errors"
    aws(cluster, "s3api", "create-bucket", "--bucket", bucket)
    out = str(tmp_path / "out")

    missing_key = cluster.aws("s3api", "get-object", "--bucket", bucket, "--key", "nope",
                              out, check=False)
    assert missing_key.returncode != 0
    assert "NoSuchKey" in missing_key.stderr, missing_key.stderr
    assert not Path(out).exists()

    missing_bucket = cluster.aws("s3api", "get-object", "--bucket", "awscli-no-such-bucket",
                                 "--key", "nope", out, check=False)
    assert missing_bucket.returncode != 0
    assert "NoSuchBucket" in missing_bucket.stderr, missing_bucket.stderr

    aws(cluster, "s3api", "delete-bucket", "--bucket", bucket)
