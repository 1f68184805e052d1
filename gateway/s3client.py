"""A minimal signed S3 client for operator commands (`shoal bucket public`).

Operator commands talk to the cluster through the S3 API like any client, so they
exercise the same validation and the same records. This signs with SigV4 header auth
using the key derivation of gateway/sigv4.py (the verify side stays the only
implementation of the canonical-request rules the gateway checks); it is small and
synchronous on purpose: a CLI sends a handful of requests.
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from gateway.sigv4 import ALGORITHM, derive_signing_key, hmac_hex

REGION = "us-east-1"


@dataclass
class S3Response:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class S3Client:
    endpoint: str
    access_key: str
    secret_key: str

    @classmethod
    def from_data(cls, data: Path, endpoint: str | None = None) -> S3Client:
        """The admin credentials of a `shoal up` cluster (DATA/cluster.json) and its
        endpoint (DATA/runtime.json unless given)."""
        ident = json.loads((data / "cluster.json").read_text())
        if endpoint is None:
            endpoint = json.loads((data / "runtime.json").read_text())["endpoint"]
        return cls(endpoint.rstrip("/"), ident["access_key"], ident["secret_key"])

    def request(self, method: str, path: str, query: str = "", body: bytes = b"",
                headers: dict[str, str] | None = None, now: float | None = None) -> S3Response:
        """Send one signed request; ``query`` is a bare sub-resource name like "policy"."""
        now = time.time() if now is None else now
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        payload = hashlib.sha256(body).hexdigest()
        uri = quote(path, safe="/-_.~")
        host = urlsplit(self.endpoint).netloc
        signed = {"host": host, "x-amz-content-sha256": payload, "x-amz-date": amz_date}
        names = sorted(signed)
        canonical = "\n".join([
            method, uri, f"{quote(query, safe='-_.~')}=" if query else "",
            "".join(f"{n}:{signed[n]}\n" for n in names), ";".join(names), payload])
        scope = f"{amz_date[:8]}/{REGION}/s3/aws4_request"
        to_sign = "\n".join([ALGORITHM, amz_date, scope,
                             hashlib.sha256(canonical.encode()).hexdigest()])
        signature = hmac_hex(derive_signing_key(self.secret_key, amz_date[:8], REGION), to_sign)
        all_headers = {**(headers or {}), **signed, "authorization": (
            f"{ALGORITHM} Credential={self.access_key}/{scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={signature}")}
        url = self.endpoint + uri + (f"?{quote(query, safe='-_.~')}" if query else "")
        req = urllib.request.Request(url, data=body if body or method in ("PUT", "POST")
                                     else None, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return S3Response(r.status, dict(r.headers), r.read())
        except urllib.error.HTTPError as err:
            return S3Response(err.code, dict(err.headers), err.read())
