"""Round trips through s3cmd and rclone (Debian packages), configured here in tmp_path."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

MiB = 1024 * 1024


def run(*argv: str) -> str:
    # A CA bundle for AWS makes rclone's SDK swap its HTTP transport, which rclone refuses;
    # nothing here speaks TLS.
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, f"{argv}\nstdout: {done.stdout}\nstderr: {done.stderr}"
    return done.stdout


def make_tree(root: Path) -> dict[str, bytes]:
    files = {"small.txt": b"hello from a client", "dir/with space.bin": os.urandom(70_000),
             "dir/ünïcode+plus.dat": os.urandom(1000), "big.bin": os.urandom(12 * MiB + 3)}
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


@pytest.fixture(scope="module")
def s3(cluster):
    return cluster.client()


@pytest.mark.skipif(shutil.which("s3cmd") is None, reason="s3cmd is not installed "
                    "(scripts/bootstrap installs it with SHOAL_WITH_TEST_TOOLS=1)")
def test_s3cmd_round_trip(cluster, s3, tmp_path):
    cfg = tmp_path / "s3cfg"
    host = f"127.0.0.1:{cluster.port}"
    cfg.write_text("[default]\n"
                   f"access_key = {cluster.access_key}\nsecret_key = {cluster.secret_key}\n"
                   f"host_base = {host}\nhost_bucket = {host}\nuse_https = False\n"
                   "signature_v2 = False\nbucket_location = us-east-1\n"
                   "multipart_chunk_size_mb = 5\n")
    s3cmd = ("s3cmd", "-c", str(cfg), "--no-progress")
    src, back = tmp_path / "src", tmp_path / "back"
    src.mkdir()
    back.mkdir()
    files = make_tree(src)
    run(*s3cmd, "mb", "s3://s3cmd-bucket")
    run(*s3cmd, "put", "--recursive", f"{src}/", "s3://s3cmd-bucket/tree/")
    listed = run(*s3cmd, "ls", "--recursive", "s3://s3cmd-bucket")
    for name in files:
        assert f"s3://s3cmd-bucket/tree/{name}" in listed
    head = s3.head_object(Bucket="s3cmd-bucket", Key="tree/big.bin")
    assert head["ContentLength"] == len(files["big.bin"]) and head["ETag"].endswith('-3"')
    run(*s3cmd, "get", "--recursive", "s3://s3cmd-bucket/tree/", f"{back}/")
    for name, data in files.items():
        assert (back / name).read_bytes() == data, name
    info = run(*s3cmd, "info", "s3://s3cmd-bucket/tree/small.txt")
    assert hashlib.md5(files["small.txt"]).hexdigest() in info
    run(*s3cmd, "cp", "s3://s3cmd-bucket/tree/small.txt", "s3://s3cmd-bucket/copy.txt")
    assert s3.get_object(Bucket="s3cmd-bucket", Key="copy.txt")["Body"].read() == (
        files["small.txt"])
    run(*s3cmd, "del", "--recursive", "--force", "s3://s3cmd-bucket/")
    run(*s3cmd, "rb", "s3://s3cmd-bucket")
    assert "s3cmd-bucket" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


@pytest.mark.skipif(shutil.which("rclone") is None, reason="rclone is not installed "
                    "(scripts/bootstrap installs it with SHOAL_WITH_TEST_TOOLS=1)")
def test_rclone_round_trip(cluster, s3, tmp_path):
    cfg = tmp_path / "rclone.conf"
    cfg.write_text("[shoal]\ntype = s3\nprovider = Other\nenv_auth = false\n"
                   f"access_key_id = {cluster.access_key}\n"
                   f"secret_access_key = {cluster.secret_key}\n"
                   f"endpoint = {cluster.endpoint}\nregion = us-east-1\n"
                   "force_path_style = true\n")
    rclone = ("rclone", "--config", str(cfg), "--s3-upload-cutoff", "5M",
              "--s3-chunk-size", "5M", "--retries", "1", "--low-level-retries", "2")
    src, back = tmp_path / "src", tmp_path / "back"
    src.mkdir()
    files = make_tree(src)
    run(*rclone, "mkdir", "shoal:rclone-bucket")
    run(*rclone, "copy", str(src), "shoal:rclone-bucket/tree")
    run(*rclone, "check", str(src), "shoal:rclone-bucket/tree")  # sizes and hashes
    listed = run(*rclone, "lsf", "-R", "--files-only", "shoal:rclone-bucket/tree").split("\n")
    assert sorted(filter(None, listed)) == sorted(files)
    assert s3.head_object(Bucket="rclone-bucket", Key="tree/big.bin")["ETag"].endswith('-3"')
    run(*rclone, "copy", "shoal:rclone-bucket/tree", str(back))
    for name, data in files.items():
        assert (back / name).read_bytes() == data, name
    (src / "small.txt").write_bytes(b"changed")
    (src / "dir" / "with space.bin").unlink()
    run(*rclone, "sync", str(src), "shoal:rclone-bucket/tree")
    assert s3.get_object(Bucket="rclone-bucket", Key="tree/small.txt")["Body"].read() == (
        b"changed")
    assert s3.list_objects_v2(Bucket="rclone-bucket", Prefix="tree/dir/with")["KeyCount"] == 0
    run(*rclone, "purge", "shoal:rclone-bucket")
    assert "rclone-bucket" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
