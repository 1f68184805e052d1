"""POST Object: browser form uploads authorised by a signed policy document (SigV4).

The form carries ``policy`` (base64 JSON: ``expiration`` and ``conditions``), and
``x-amz-algorithm``/``x-amz-credential``/``x-amz-date``/``x-amz-signature``, the signature
being HMAC-SHA256 of the base64 policy under the SigV4 signing key (gateway/sigv4.py
derives it). What is checked, as S3 checks it:

* the signature (403 SignatureDoesNotMatch) and the expiration (403 AccessDenied);
* every condition: ``{"field": "value"}`` and ``["eq", "$field", "value"]`` (exact),
  ``["starts-with", "$field", "prefix"]`` (an empty prefix allows anything), and
  ``["content-length-range", min, max]`` on the file's size (400 EntityTooSmall /
  EntityTooLarge); a failed condition is 403 AccessDenied;
* every form field except ``policy``, ``x-amz-signature``, ``file`` and ``x-ignore-*``
  must be named by a condition (403 AccessDenied, "Extra input fields").

``${filename}`` in ``key`` becomes the uploaded file's name. On success:
``success_action_redirect`` → 303 to that URL with bucket, key and etag in the query;
else ``success_action_status`` 200 or 201 (201 returns a PostResponse document); else 204.
A form without ``policy`` is anonymous, and Shoal has no public-write buckets: 403.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from starlette.requests import ClientDisconnect
from starlette.responses import Response

from gateway.access import authorize
from gateway.blockstore import BlockWriter
from gateway.errors import S3Error
from gateway.formdata import Form, FormReader, boundary_of
from gateway.limits import check_acl_fields
from gateway.objects import INLINE_MAX, STORED_HEADERS
from gateway.records import ObjectRecord
from gateway.sigv4 import ALGORITHM, derive_signing_key, hmac_hex, signatures_equal
from gateway.xmlio import xml_response
from placement.policy import StoragePolicy

if TYPE_CHECKING:
    from gateway.app import S3Request

UNCHECKED_FIELDS = {"policy", "x-amz-signature", "file"}


def _denied(why: str) -> S3Error:
    return S3Error("AccessDenied", f"Invalid according to Policy: {why}")


def _bad_policy(why: str) -> S3Error:
    return S3Error("InvalidPolicyDocument", f"Invalid Policy: {why}")


async def verify_signature(req: S3Request, form: Form) -> None:
    """The form's SigV4 policy signature, then the signing key's write permission."""
    f = form.fields
    if "policy" not in f:
        raise S3Error("AccessDenied", "Access Denied")
    if f.get("x-amz-algorithm") != ALGORITHM:
        raise S3Error("InvalidArgument", "POST requires the x-amz-algorithm field to be "
                      f"{ALGORITHM}", ArgumentName="x-amz-algorithm")
    parts = f.get("x-amz-credential", "").split("/")
    if len(parts) != 5 or parts[3] != "s3" or parts[4] != "aws4_request" \
            or "x-amz-signature" not in f or "x-amz-date" not in f:
        raise S3Error("InvalidArgument", "POST requires x-amz-credential, x-amz-date and "
                      "x-amz-signature fields", ArgumentName="x-amz-credential")
    access_key, date, region = parts[0], parts[1], parts[2]
    keys = req.security.keys
    await keys.prefetch(access_key)
    secret = keys.secret_for(access_key)
    if secret is None:
        raise S3Error("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist "
                      "in our records.", AWSAccessKeyId=access_key)
    expected = hmac_hex(derive_signing_key(secret, date, region), f["policy"])
    if not signatures_equal(expected, f["x-amz-signature"]):
        raise S3Error("SignatureDoesNotMatch", "The request signature we calculated does not "
                      "match the signature you provided. Check your key and signing method.",
                      AWSAccessKeyId=access_key)
    authorize(keys.principal_for(access_key), "PostObject", req.bucket, req.headers)


def _policy(form: Form) -> list:
    try:
        doc = json.loads(base64.b64decode(form.fields["policy"], validate=True))
    except (binascii.Error, ValueError):
        raise _bad_policy("Invalid JSON.") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("conditions"), list):
        raise _bad_policy("Policy missing conditions.")
    try:
        expires = datetime.fromisoformat(str(doc["expiration"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        raise _bad_policy("Invalid 'expiration' value.") from None
    if expires.timestamp() < time.time():
        raise _denied("Policy expired.")
    return doc["conditions"]


def check_conditions(conditions: list, values: dict[str, str]) -> tuple[int, int | None]:
    """Check the field conditions against ``values`` (lower-case names); returns the
    content-length-range (min, max) for the file. Raises AccessDenied on a failure."""
    size_range: tuple[int, int | None] = (0, None)
    covered: set[str] = set()
    for cond in conditions:
        if isinstance(cond, dict) and len(cond) == 1:
            name, want = next(iter(cond.items()))
            op, name = "eq", str(name).lower()
        elif isinstance(cond, list) and len(cond) == 3 and str(cond[0]).lower() in (
                "eq", "starts-with", "content-length-range"):
            op = str(cond[0]).lower()
            if op == "content-length-range":
                try:
                    size_range = (int(cond[1]), int(cond[2]))
                except (TypeError, ValueError):
                    raise _bad_policy("Invalid content-length-range.") from None
                continue
            name, want = str(cond[1]), cond[2]
            if not name.startswith("$"):
                raise _bad_policy(f"Invalid condition field name {name}.")
            name = name[1:].lower()
        else:
            raise _bad_policy(f"Invalid condition: {json.dumps(cond)}")
        covered.add(name)
        have = values.get(name, "")
        want = str(want)
        if op == "eq":
            ok = have == want
        elif name == "content-type":
            ok = all(v.strip().startswith(want) for v in have.split(","))
        else:
            ok = have.startswith(want)
        if not ok:
            raise _denied(f"Policy Condition failed: {json.dumps(cond)}")
    extra = [n for n in values if n not in covered and n not in UNCHECKED_FIELDS
             and not n.startswith("x-ignore-") and n != "bucket"]
    if extra:
        raise _denied(f"Extra input fields: {', '.join(sorted(extra))}")
    return size_range


async def _raw(req: S3Request) -> AsyncIterator[bytes]:
    try:
        async for chunk in req.request.stream():
            if chunk:
                yield chunk
    except ClientDisconnect:
        raise S3Error("IncompleteBody", "The client closed the connection") from None


async def _store(req: S3Request, chunks: AsyncIterator[bytes], policy: StoragePolicy,
                 low: int, high: int | None) -> tuple[int, str, bytes | None, list]:
    """(size, md5 hex, inline bytes or None, blocks); enforces the length range while
    streaming and removes whatever was stored when anything fails."""
    md5 = hashlib.md5(usedforsecurity=False)
    seen = 0

    async def limited() -> AsyncIterator[bytes]:
        nonlocal seen
        async for chunk in chunks:
            seen += len(chunk)
            if high is not None and seen > high:
                raise S3Error("EntityTooLarge", "Your proposed upload exceeds the maximum "
                              "allowed size", ProposedSize=str(seen), MaxSizeAllowed=str(high))
            yield chunk

    source = limited()
    head = bytearray()
    async for chunk in source:
        head += chunk
        if len(head) > INLINE_MAX:
            break
    if len(head) <= INLINE_MAX:
        if seen < low:
            raise S3Error("EntityTooSmall", "Your proposed upload is smaller than the minimum "
                          "allowed size", ProposedSize=str(seen), MinSizeAllowed=str(low))
        md5.update(head)
        return len(head), md5.hexdigest(), bytes(head), []

    async def rest() -> AsyncIterator[bytes]:
        yield bytes(head)
        async for chunk in source:
            yield chunk

    writer = BlockWriter(req.backend, policy)
    try:
        size = await writer.write(rest(), md5.update)
        if size < low:
            raise S3Error("EntityTooSmall", "Your proposed upload is smaller than the minimum "
                          "allowed size", ProposedSize=str(size), MinSizeAllowed=str(low))
    except BaseException:
        writer.abort()
        raise
    return size, md5.hexdigest(), None, writer.blocks


def _values(req: S3Request, form: Form) -> dict[str, str]:
    values = dict(form.fields)
    values["bucket"] = req.bucket
    if "key" not in values:
        raise S3Error("InvalidArgument", "Bucket POST must contain a field named 'key'.  If it "
                      "is specified, please check the order of the fields.",
                      ArgumentName="key", ArgumentValue="")
    values["key"] = values["key"].replace("${filename}", form.filename or "")
    return values


async def post_object(req: S3Request) -> Response:
    bucket = await req.catalog.bucket(req.bucket)
    reader = FormReader(_raw(req), boundary_of(req.headers.get("content-type", "")))
    form = await reader.read_fields()
    await verify_signature(req, form)
    conditions = _policy(form)
    if form.filename is None:
        raise S3Error("IncorrectNumberOfFilesInPostRequest", "POST requires exactly one file "
                      "upload per request.", ProvidedFileCount="0")
    values = _values(req, form)
    key = values["key"]
    if not key or len(key.encode()) > 1024:
        raise S3Error("KeyTooLongError" if key else "InvalidArgument", "Invalid key")
    low, high = check_conditions(conditions, values)
    check_acl_fields(values)
    policy = StoragePolicy.from_dict(bucket.policy)
    size, etag, inline, blocks = await _store(req, reader.file_chunks(), policy, low, high)
    fields: dict[str, Any] = values
    rec = ObjectRecord(
        bucket=req.bucket, key=key, hlc=req.catalog.stamp(), size=size, etag=etag,
        last_modified=time.time(),
        content_type=fields.get("content-type") or "binary/octet-stream",
        user_meta={k[len("x-amz-meta-"):]: v for k, v in fields.items()
                   if k.startswith("x-amz-meta-")},
        headers={k: fields[k] for k in STORED_HEADERS if k in fields},
        policy=bucket.policy, blocks=blocks,
        inline=base64.b64encode(inline).decode() if inline is not None else None)
    await req.catalog.put_object(rec)
    location = f"{req.request.base_url}{quote(req.bucket)}/{quote(key)}"
    headers = {"ETag": f'"{etag}"', "Location": location}
    redirect = fields.get("success_action_redirect") or fields.get("redirect")
    if redirect:
        query = urlencode({"bucket": req.bucket, "key": key, "etag": f'"{etag}"'})
        headers["Location"] = redirect + ("&" if "?" in redirect else "?") + query
        return Response(status_code=303, headers=headers)
    status = fields.get("success_action_status", "")
    if status == "201":
        return xml_response("PostResponse", [("Location", location), ("Bucket", req.bucket),
                                             ("Key", key), ("ETag", f'"{etag}"')],
                            status=201, headers=headers)
    return Response(status_code=200 if status == "200" else 204, headers=headers)
