"""Bucket sub-resource configurations (policy, CORS, website), kept inside the bucket record.

Each configuration is a field of ``BucketRecord``; changing one rewrites the whole record
with a fresh HLC stamp (last writer wins, like every metadata record). Two different
configurations changed at the same instant through two gateways can therefore lose one
of the changes; S3 itself documents bucket configuration as eventually consistent.

``cached_bucket`` reads a bucket record at most once per HTTP request, so the access
check, the handler and the CORS decoration of one request share one quorum read.
"""

from __future__ import annotations

import re
from functools import lru_cache

from starlette.requests import Request

from gateway.catalog import Catalog
from gateway.records import BucketRecord


async def cached_bucket(catalog: Catalog, request: Request, name: str) -> BucketRecord:
    """The bucket record (NoSuchBucket when absent), read once per request."""
    memo: dict[str, BucketRecord] = getattr(request.state, "shoal_buckets", None) or {}
    if name not in memo:
        memo[name] = await catalog.bucket(name)
        request.state.shoal_buckets = memo
    return memo[name]


async def read_small_body(request: Request, limit: int, too_large: Exception) -> bytes:
    """The whole request body of a configuration document, refusing more than ``limit``."""
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        parts.append(chunk)
    return b"".join(parts)


@lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(rx, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def wildcard_match(pattern: str, text: str, ignore_case: bool = False) -> bool:
    """AWS-style wildcards: '*' any run of characters ('/' included), '?' one character."""
    return _glob(pattern, ignore_case).fullmatch(text) is not None
