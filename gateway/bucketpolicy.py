"""Bucket policies: the JSON subset S3 users write to publish media, and anonymous access.

Supported document (anything else is refused with MalformedPolicy, never half-applied):

    {"Version": "2012-10-17",
     "Statement": [{"Sid": "...", "Effect": "Allow" | "Deny",
                    "Principal": "*" | {"AWS": "*"} | {"AWS": ["*"]},
                    "Action": "s3:GetObject" | ["s3:GetObject", ...] | "s3:*" | "*",
                    "Resource": "arn:aws:s3:::BUCKET/prefix*" | [...]}]}

Actions and resources take AWS wildcards ('*', '?'); actions match case-insensitively,
resources case-sensitively. A resource must name this bucket. Condition, NotAction,
NotResource and NotPrincipal are refused (not silently ignored: ignoring a Condition
would publish more than its author meant).

Evaluation (``evaluate``): an explicit Deny wins, then an Allow, else no decision.
Only unauthenticated requests are evaluated here: GetObject and HeadObject (both the
action s3:GetObject) are served when a statement allows them; every other anonymous
request is AccessDenied, whatever the policy says. Signed requests are governed by
their access key, not by this policy.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.bucketconfig import cached_bucket, read_small_body, wildcard_match
from gateway.catalog import Catalog
from gateway.errors import S3Error

if TYPE_CHECKING:
    from gateway.app import S3Request

MAX_POLICY_BYTES = 20 * 1024  # S3's limit for a bucket policy
ARN_PREFIX = "arn:aws:s3:::"
VERSIONS = ("2012-10-17", "2008-10-17")
UNSUPPORTED_FIELDS = ("Condition", "NotAction", "NotResource", "NotPrincipal")
STATEMENT_FIELDS = {"Sid", "Effect", "Principal", "Action", "Resource", *UNSUPPORTED_FIELDS}
# Anonymous requests that a policy can open, and the IAM action each one needs.
ANONYMOUS_ACTIONS = {"GetObject": "s3:GetObject", "HeadObject": "s3:GetObject"}
# Requests that never need credentials: a browser's CORS preflight carries none.
UNAUTHENTICATED_OPERATIONS = frozenset({"Options"})
PUBLIC_SID = "ShoalPublicRead"  # the statement `shoal bucket public` owns
_ACTION = re.compile(r"^(\*|s3:[a-z*?]+)$", re.IGNORECASE)


@dataclass(frozen=True)
class Statement:
    sid: str
    effect: str  # "Allow" | "Deny"
    actions: tuple[str, ...]
    resources: tuple[str, ...]

    def applies(self, action: str, resource: str) -> bool:
        return (any(wildcard_match(a, action, ignore_case=True) for a in self.actions)
                and any(wildcard_match(r, resource) for r in self.resources))


def malformed(message: str) -> S3Error:
    return S3Error("MalformedPolicy", message)


def _strings(value: Any, what: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(i, str) and i for i in items):
        raise malformed(f"Policy has invalid {what}")
    return tuple(items)


def _check_principal(value: Any) -> None:
    if value == "*":
        return
    if isinstance(value, dict) and set(value) == {"AWS"}:
        aws = value["AWS"]
        if aws == "*" or aws == ["*"]:
            return
    raise malformed("Invalid principal in policy: Shoal policies grant to \"*\" only")


def _statement(raw: Any, bucket: str) -> Statement:
    if not isinstance(raw, dict):
        raise malformed("Policy statements must be JSON objects")
    for name in raw:
        if name in UNSUPPORTED_FIELDS:
            raise malformed(f"Shoal does not support {name} in bucket policies")
        if name not in STATEMENT_FIELDS:
            raise malformed(f"Unknown field {name}")
    for name in ("Effect", "Principal", "Action", "Resource"):
        if name not in raw:
            raise malformed(f"Missing required field {name}")
    effect = raw["Effect"]
    if effect not in ("Allow", "Deny"):
        raise malformed(f"Invalid effect: {effect}")
    sid = raw.get("Sid", "")
    if not isinstance(sid, str):
        raise malformed("Statement IDs (SID) must be strings")
    _check_principal(raw["Principal"])
    actions = _strings(raw["Action"], "action")
    if not all(_ACTION.match(a) for a in actions):
        raise malformed("Policy has invalid action")
    resources = _strings(raw["Resource"], "resource")
    for res in resources:
        target = res[len(ARN_PREFIX):].split("/", 1)[0] if res.startswith(ARN_PREFIX) else ""
        if not target or not wildcard_match(target, bucket):
            raise malformed("Policy has invalid resource")
    return Statement(sid, effect, actions, resources)


@lru_cache(maxsize=256)
def parse_policy(text: str, bucket: str) -> tuple[Statement, ...]:
    """The statements of a policy document for ``bucket``; MalformedPolicy if unsupported."""
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise malformed("Policies must be valid JSON and the first byte must be '{'")
    for name in doc:
        if name not in ("Version", "Id", "Statement"):
            raise malformed(f"Unknown field {name}")
    if "Version" in doc and doc["Version"] not in VERSIONS:
        raise malformed(f"Invalid policy version: {doc['Version']}")
    raw = doc.get("Statement")
    if raw is None:
        raise malformed("Missing required field Statement")
    statements = raw if isinstance(raw, list) else [raw]
    if not statements:
        raise malformed("Could not parse the policy: Statement is empty!")
    return tuple(_statement(s, bucket) for s in statements)


def evaluate(statements: tuple[Statement, ...], action: str, resource: str) -> str | None:
    """"Deny" if any statement denies, else "Allow" if any allows, else None."""
    matching = {s.effect for s in statements if s.applies(action, resource)}
    if "Deny" in matching:
        return "Deny"
    return "Allow" if "Allow" in matching else None


def object_arn(bucket: str, key: str) -> str:
    return f"{ARN_PREFIX}{bucket}/{key}"


def allows_anonymous_read(policy_text: str, bucket: str, key: str) -> bool:
    """True when the policy lets anyone GetObject ``key`` (and nothing denies it)."""
    if not policy_text:
        return False
    return evaluate(parse_policy(policy_text, bucket), "s3:GetObject",
                    object_arn(bucket, key)) == "Allow"


async def authorize_anonymous(catalog: Catalog, request: Request, operation: str,
                              bucket: str, key: str) -> None:
    """Let an unauthenticated request through, or raise AccessDenied (NoSuchBucket when
    the bucket does not exist, as S3 answers anonymous requests too)."""
    if operation in UNAUTHENTICATED_OPERATIONS:
        return
    if operation in ANONYMOUS_ACTIONS and bucket and key:
        rec = await cached_bucket(catalog, request, bucket)
        if allows_anonymous_read(rec.access_policy, bucket, key):
            return
    raise S3Error("AccessDenied", "Access Denied")


def public_read_policy(existing: str, bucket: str, prefix: str, public: bool) -> str:
    """``existing`` with the ``ShoalPublicRead`` statement opened (or closed) for ``prefix``.

    Other statements are kept as written. Closing with an empty prefix removes the whole
    ShoalPublicRead statement; the result is "" when no statement is left.
    """
    doc = json.loads(existing) if existing else {"Version": VERSIONS[0], "Statement": []}
    statements = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
    ours = next((s for s in statements if s.get("Sid") == PUBLIC_SID), None)
    resources = [] if ours is None else list(_strings(ours["Resource"], "resource"))
    arn = object_arn(bucket, prefix) + "*"
    if public and arn not in resources:
        resources.append(arn)
    elif not public:
        resources = [r for r in resources if prefix and r != arn]
    statements = [s for s in statements if s is not ours]
    if resources:
        statements.append({"Sid": PUBLIC_SID, "Effect": "Allow", "Principal": "*",
                           "Action": "s3:GetObject", "Resource": resources})
    if not statements:
        return ""
    doc["Statement"] = statements
    return json.dumps(doc, indent=2)


# Handlers --------------------------------------------------------------------------

async def put_policy(req: S3Request) -> Response:
    body = await read_small_body(req.request, MAX_POLICY_BYTES, malformed(
        "Policy exceeds the maximum allowed document size."))
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise malformed("Policies must be valid JSON and the first byte must be '{'") from None
    parse_policy(text, req.bucket)

    await req.catalog.update_bucket(req.bucket, access_policy=text)
    return Response(status_code=204)


async def get_policy(req: S3Request) -> Response:
    rec = await req.catalog.bucket(req.bucket)
    if not rec.access_policy:
        raise S3Error("NoSuchBucketPolicy", "The bucket policy does not exist",
                      BucketName=req.bucket)
    return Response(rec.access_policy, media_type="application/json")


async def delete_policy(req: S3Request) -> Response:
    await req.catalog.update_bucket(req.bucket, access_policy="")
    return Response(status_code=204)
