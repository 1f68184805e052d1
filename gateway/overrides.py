"""Response header overrides on GetObject/HeadObject: ``?response-content-type=…`` and kin.

S3 lets a signed request (header-signed or a presigned URL) replace six response
headers with values from the query string, typically to make a browser download a
file under a given name. Anonymous requests may not (400 InvalidRequest), because the
override would let anyone forge headers on someone else's object. The stored object is
never changed.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.errors import S3Error

OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}


def apply_overrides(query: Mapping[str, str], headers: dict[str, str], signed: bool) -> None:
    """Replace ``headers`` entries named by response-* query parameters, in place."""
    wanted = {name: query[param] for param, name in OVERRIDES.items() if param in query}
    if not wanted:
        return
    if not signed:
        raise S3Error("InvalidRequest", "Request specific response headers cannot be used for "
                      "anonymous GET requests.")
    for name, value in wanted.items():
        for existing in [k for k in headers if k.lower() == name.lower()]:
            del headers[existing]
        headers[name] = value
