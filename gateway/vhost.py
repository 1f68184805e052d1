"""Virtual-hosted-style addressing: ``bucket.s3.example:9000/key`` beside ``/bucket/key``.

The gateway is given its base domains (``shoal gateway --domain s3.example``, or
SHOAL_DOMAIN, comma-separated). A Host header that is a subdomain of one of them names
the bucket, and the whole path is the key; any other Host (the base domain itself, an IP
address, localhost) is path-style. SigV4 needs nothing from here: clients sign the path
they send, and the verifier reads it exactly as sent.
"""

from __future__ import annotations

from collections.abc import Sequence


def parse_domains(value: str | None) -> tuple[str, ...]:
    """``"s3.example, s3.local"`` → ("s3.example", "s3.local"), lower-case, no dots at ends."""
    return tuple(d.strip().strip(".").lower() for d in (value or "").split(",") if d.strip())


def bucket_from_host(host: str | None, domains: Sequence[str]) -> str | None:
    """The bucket a virtual-hosted-style Host names, or None for path-style."""
    if not host or not domains:
        return None
    name = host.strip().lower()
    if name.startswith("["):  # an IPv6 literal is never a virtual host
        return None
    name = name.rsplit(":", 1)[0].rstrip(".")
    for domain in domains:
        if name.endswith("." + domain) and len(name) > len(domain) + 1:
            return name[: -len(domain) - 1]
    return None


def split_request_path(path: str, host: str | None, domains: Sequence[str]) -> tuple[str, str]:
    """(bucket, key) of a request: from the Host when it is virtual-hosted, else the path.
    The key may contain any characters, '/' included."""
    bucket = bucket_from_host(host, domains)
    if bucket is not None:
        return bucket, path[1:] if path.startswith("/") else path
    bucket, _, key = path.lstrip("/").partition("/")
    return bucket, key
