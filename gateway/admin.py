"""The admin API, on every gateway under /_shoal/admin/: keys, buckets with policies, status.

Authentication: ``Authorization: Bearer <SHOAL_ADMIN_TOKEN>``, compared in constant time.
A gateway started without a token answers 403 to every admin request (the API is off).
Bodies and answers are JSON; errors are ``{"error": code, "message": words}``.

    GET    /_shoal/admin/status                       members, zones, capacity, problems,
                                                       this gateway's writes in flight
                                                       and read-ahead
    GET    /_shoal/admin/keys                         keys (never their secrets)
    POST   /_shoal/admin/keys        {"name"}         a new key: its secret is shown once
    DELETE /_shoal/admin/keys/KEY
    PUT    /_shoal/admin/keys/KEY/buckets/BUCKET {"permission": read|write|owner|none}
    POST   /_shoal/admin/buckets     {"name", "policy": "4+2"|"replica:2", "zones", "encrypt"}
    GET    /_shoal/admin/buckets/NAME                  the bucket and its policy
    GET    /_shoal/admin/objects/BUCKET/KEY            shard health of one object
    GET    /_shoal/admin/repair                        background work and repair progress
    POST   /_shoal/admin/run?task=repair|rebalance|scrub|gc|sync  a pass on every live node
    POST   /_shoal/admin/nodes/NAME/drain              move everything off a node, then
                                                       it leaves (409 DrainRefused when the
                                                       rest cannot hold its data)
    GET    /_shoal/admin/nodes/NAME/drain              drain progress

(Shard health, repair and run live in gateway/adminrepair.py; drains in admindrain.py.)

Bucket creation refuses (409 PolicyUnsatisfiable) a policy the live cluster cannot hold
now: fewer live nodes than k+m, fewer live zones than ``zones``, or zones too small to
keep at most m shards each (placement/spread.py).
"""

from __future__ import annotations

import hmac
import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway import admindrain, adminrepair
from gateway.buckets import check_bucket_name
from gateway.errors import S3Error
from gateway.keys import KeyRecord, check_level
from gateway.status import cluster_status
from placement.policy import StoragePolicy, parse_policy
from placement.spread import feasible

if TYPE_CHECKING:
    from gateway.catalog import Catalog
    from gateway.security import Security

PREFIX = "/_shoal/admin/"
MAX_BODY = 64 * 1024


class AdminError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def authorized(request: Request, token: str | None) -> bool:
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    if token is None or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(value.strip().encode("utf-8", "surrogateescape"), token.encode())


async def handle(request: Request, catalog: Catalog, security: Security) -> Response:
    try:
        if not authorized(request, security.admin_token):
            # 401 asks for credentials that were not sent; 403 refuses the ones that were.
            missing = "authorization" not in request.headers
            raise AdminError(401 if missing else 403, "AccessDenied",
                             "a valid admin token is required "
                             "(Authorization: Bearer <SHOAL_ADMIN_TOKEN>)")
        path = request.url.path[len(PREFIX):]
        if path.startswith("objects/") and request.method == "GET":
            bucket, _, key = path[len("objects/"):].partition("/")  # keys keep every '/'
            return await adminrepair.object_health(catalog.backend, catalog, bucket, key)
        if path == "run" and request.method == "POST":
            return await adminrepair.run(catalog.backend, request.query_params.get("task", ""))
        parts = [p for p in path.split("/") if p]
        return JSONResponse(await _route(request, request.method, parts, catalog, security))
    except AdminError as err:
        challenge = {"WWW-Authenticate": "Bearer"} if err.status == 401 else None
        return JSONResponse({"error": err.code, "message": err.message}, status_code=err.status,
                            headers=challenge)
    except S3Error as err:
        return JSONResponse({"error": err.code, "message": err.message},
                            status_code=err.status)


async def _body(request: Request) -> dict[str, Any]:
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_BODY:
            raise AdminError(413, "TooLarge", f"admin requests are at most {MAX_BODY} bytes")
    try:
        value = json.loads(data or b"{}")
    except ValueError:
        raise AdminError(400, "BadRequest", "the body is not JSON") from None
    if not isinstance(value, dict):
        raise AdminError(400, "BadRequest", "the body must be a JSON object")
    return value


def _key_view(rec: KeyRecord) -> dict[str, Any]:
    return {"access_key": rec.access_key, "name": rec.name, "created": rec.created,
            "buckets": dict(sorted(rec.grants.items()))}


async def _route(request: Request, method: str, parts: list[str], catalog: Catalog,
                 security: Security) -> Any:
    keys = security.keys
    match method, parts:
        case "GET", ["status"]:
            return await cluster_status(catalog)
        case "GET", ["repair"]:
            return await adminrepair.repair_status(catalog.backend)
        case "GET", ["keys"]:
            return {"keys": [_key_view(k) for k in await keys.list()]}
        case "POST", ["keys"]:
            name = str((await _body(request)).get("name", ""))[:200]
            rec, secret = await keys.create(name)
            return {**_key_view(rec), "secret_key": secret}
        case "DELETE", ["keys", access_key]:
            try:
                await keys.delete(access_key)
            except KeyError:
                raise AdminError(404, "NoSuchKey", f"no access key {access_key}") from None
            return {"deleted": access_key}
        case "PUT", ["keys", access_key, "buckets", bucket]:
            level = (await _body(request)).get("permission")
            try:
                rec = await keys.grant(access_key, bucket,
                                       None if level == "none" else check_level(str(level)))
            except KeyError:
                raise AdminError(404, "NoSuchKey", f"no access key {access_key}") from None
            except ValueError as err:
                raise AdminError(400, "BadRequest", str(err)) from None
            return _key_view(rec)
        case "POST", ["buckets"]:
            return await _create_bucket(await _body(request), catalog)
        case "GET", ["buckets", name]:
            return bucket_view(await catalog.bucket(name))
        case "POST", ["nodes", name, "drain"]:
            try:
                return await admindrain.begin(catalog, name)
            except admindrain.DrainError as err:
                raise AdminError(err.status, err.code, err.message) from None
        case "GET", ["nodes", name, "drain"]:
            return await admindrain.progress(catalog.backend, name)
    raise AdminError(404, "NotFound", f"no admin operation {method} /{'/'.join(parts)}")


def policy_from(body: dict[str, Any]) -> StoragePolicy:
    """The policy a create-bucket body asks for (ValueError when it is invalid)."""
    text = body.get("policy")
    zones, encrypt = body.get("zones", 1), body.get("encrypt", False)
    if not isinstance(zones, int) or not isinstance(encrypt, bool):
        raise ValueError("zones must be an integer and encrypt a boolean")
    if not isinstance(text, str):
        raise ValueError("policy must be text such as 4+2 or replica:3")
    base = parse_policy(text)
    return StoragePolicy(base.kind, base.k, base.m, zones=zones, encrypt=encrypt)


async def _create_bucket(body: dict[str, Any], catalog: Catalog) -> dict[str, Any]:
    name = body.get("name")
    if not isinstance(name, str):
        raise AdminError(400, "BadRequest", "name is required")
    check_bucket_name(name)
    backend = catalog.backend
    if body.get("policy") is None:
        policy = backend.default_policy()
        policy = StoragePolicy(policy.kind, policy.k, policy.m,
                               encrypt=bool(body.get("encrypt", False)))
    else:
        try:
            policy = policy_from(body)
        except ValueError as err:
            raise AdminError(400, "InvalidPolicy", str(err)) from None
    problem = feasible(policy, backend.writable_nodes())
    if problem:
        raise AdminError(409, "PolicyUnsatisfiable", problem)
    return bucket_view(await catalog.create_bucket(name, policy.to_dict(), owner="admin"))


def bucket_view(bucket: Any) -> dict[str, Any]:
    policy = StoragePolicy.from_dict(bucket.policy)
    return {"name": bucket.name, "created": bucket.created, "owner": bucket.owner,
            "policy": {**policy.to_dict(), "text": str(policy)}}
