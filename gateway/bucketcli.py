"""`shoal bucket public NAME [--prefix P] [--off]`: publish (or unpublish) a bucket's keys.

Writes the bucket policy through the S3 API with the cluster's admin credentials
(DATA/cluster.json, as `shoal up --data` wrote them), so the change goes through the
same validation as a PutBucketPolicy from any client. Only the ``ShoalPublicRead``
statement is touched; statements a user wrote stay as they are.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.s3client import S3Client


def add_public(actions: argparse._SubParsersAction) -> None:
    """`shoal bucket public …`, added to the `shoal bucket` actions of gateway/admincli.py."""
    public = actions.add_parser("public", help="let anyone read a bucket (or a prefix of it)")
    public.add_argument("name")
    public.add_argument("--prefix", default="", help="only keys starting with this")
    public.add_argument("--off", action="store_true", help="withdraw public read access")
    public.add_argument("--data", type=Path, default=Path(".shoal-data"),
                        help="the data directory of `shoal up` (credentials, endpoint)")
    public.add_argument("--endpoint", help="S3 endpoint (default: the running `shoal up`)")


def set_public(client: S3Client, bucket: str, prefix: str, public: bool) -> str:
    """Open or close public read of ``bucket/prefix*``; returns the policy now in force
    ("" when the bucket is left without a policy). Raises RuntimeError on S3 errors."""
    got = client.request("GET", f"/{bucket}", "policy")
    if got.status not in (200, 404) or (got.status == 404 and b"NoSuchBucketPolicy"
                                         not in got.body):
        raise RuntimeError(got.body.decode(errors="replace"))
    existing = got.body.decode() if got.status == 200 else ""
    from gateway.bucketpolicy import public_read_policy  # the gateway's own code: heavy

    policy = public_read_policy(existing, bucket, prefix, public)
    if policy:
        done = client.request("PUT", f"/{bucket}", "policy", policy.encode(),
                              {"content-type": "application/json"})
    else:
        done = client.request("DELETE", f"/{bucket}", "policy")
    if done.status >= 300:
        raise RuntimeError(done.body.decode(errors="replace"))
    return policy


def run(args: argparse.Namespace) -> None:
    try:
        from gateway.s3client import S3Client

        client = S3Client.from_data(args.data.resolve(), args.endpoint)
    except (OSError, KeyError, ValueError) as err:
        sys.exit(f"shoal bucket public: no running cluster found in {args.data} ({err})")
    try:
        policy = set_public(client, args.name, args.prefix, not args.off)
    except RuntimeError as err:
        sys.exit(f"shoal bucket public: {err}")
    target = f"s3://{args.name}/{args.prefix}*"
    print(f"{target}: {'private' if args.off else 'public read'}")
    print(policy or "(no bucket policy left)")
