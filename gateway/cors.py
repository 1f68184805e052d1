"""CORS: bucket rules (Put/Get/DeleteBucketCors), preflight OPTIONS, headers on responses.

Rules are matched the way S3 matches them: the first rule whose AllowedOrigin matches
the Origin (at most one '*' wildcard each; "*" alone matches every origin), whose
AllowedMethod includes the method, and — for a preflight — whose AllowedHeader entries
cover every header the browser announced (case-insensitive, '*' wildcards) wins.

* A preflight (OPTIONS, never authenticated) answers 200 with the Access-Control-*
  headers, or 403 AccessForbidden "CORSResponse: ..." when the bucket has no CORS
  configuration or no rule matches; 400 when Origin or Access-Control-Request-Method
  is missing.
* Every other response to a request carrying Origin — errors and 206 included — gets
  Access-Control-Allow-Origin and friends when a rule matches the origin and the
  method; ``Vary`` names Origin whenever the bucket has CORS rules, so a shared cache
  never serves one origin's answer to another.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.bucketconfig import cached_bucket, read_small_body, wildcard_match
from gateway.catalog import Catalog
from gateway.errors import S3Error
from gateway.xmlio import MAX_XML_BODY, child_text, parse_xml, xml_response

if TYPE_CHECKING:
    from gateway.app import S3Request

METHODS = ("GET", "PUT", "POST", "DELETE", "HEAD")
MAX_RULES = 100
VARY = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"
NOT_ALLOWED = ("CORSResponse: This CORS request is not allowed. This is usually because the "
               "evalution of Origin, request method / Access-Control-Request-Method or "
               "Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.")

Rule = dict[str, Any]  # {"id", "origins", "methods", "headers", "expose", "max_age"}


def _malformed() -> S3Error:
    return S3Error("MalformedXML", "The XML you provided was not well-formed or did not "
                   "validate against our published schema")


def parse_cors(body: bytes) -> list[Rule]:
    """Rules from a CORSConfiguration document; S3's errors for what it refuses."""
    root = parse_xml(body)
    rules = root.findall("CORSRule")
    if root.tag != "CORSConfiguration" or not rules:
        raise _malformed()
    if len(rules) > MAX_RULES:
        raise S3Error("InvalidRequest", f"The number of CORS rules should not exceed allowed "
                      f"limit of {MAX_RULES} rules.")
    out = []
    for el in rules:
        origins = [(o.text or "").strip() for o in el.findall("AllowedOrigin")]
        methods = [(m.text or "").strip() for m in el.findall("AllowedMethod")]
        headers = [(h.text or "").strip() for h in el.findall("AllowedHeader")]
        expose = [(h.text or "").strip() for h in el.findall("ExposeHeader")]
        if not origins or not methods:
            raise _malformed()
        for method in methods:
            if method not in METHODS:
                raise S3Error("InvalidRequest", "Found unsupported HTTP method in CORS config. "
                              f"Unsupported method is {method}")
        for origin in origins:
            if origin.count("*") > 1:
                raise S3Error("InvalidRequest", f'AllowedOrigin "{origin}" can not have more '
                              "than one wildcard.")
        for header in headers:
            if header.count("*") > 1:
                raise S3Error("InvalidRequest", f'AllowedHeader "{header}" can not have more '
                              "than one wildcard.")
        max_age = child_text(el, "MaxAgeSeconds")
        if max_age is not None and not max_age.strip().isdigit():
            raise _malformed()
        out.append({"id": child_text(el, "ID"), "origins": origins, "methods": methods,
                    "headers": headers, "expose": expose,
                    "max_age": int(max_age) if max_age is not None else None})
    return out


def find_rule(rules: list[Rule], origin: str, method: str,
              request_headers: list[str] | None = None) -> Rule | None:
    """The first rule allowing ``origin`` to use ``method`` (and send ``request_headers``)."""
    for rule in rules:
        if method not in rule["methods"]:
            continue
        if not any(wildcard_match(o, origin) for o in rule["origins"]):
            continue
        if request_headers and not all(
                any(wildcard_match(h, name, ignore_case=True) for h in rule["headers"])
                for name in request_headers):
            continue
        return rule
    return None


def rule_headers(rule: Rule, origin: str) -> dict[str, str]:
    """The Access-Control-* headers a matching rule grants (preflight and actual)."""
    wildcard = "*" in rule["origins"]
    out = {"Access-Control-Allow-Origin": "*" if wildcard else origin,
           "Access-Control-Allow-Methods": ", ".join(rule["methods"])}
    if not wildcard:
        out["Access-Control-Allow-Credentials"] = "true"
    if rule["expose"]:
        out["Access-Control-Expose-Headers"] = ", ".join(rule["expose"])
    if rule["max_age"] is not None:
        out["Access-Control-Max-Age"] = str(rule["max_age"])
    return out


def _add_vary(headers: Any) -> None:
    present = headers.get("vary")
    headers["Vary"] = f"{present}, {VARY}" if present else VARY


async def add_response_headers(catalog: Catalog, request: Request, bucket: str,
                               response: Response) -> None:
    """Decorate an actual (non-preflight) response for a cross-origin request."""
    origin = request.headers.get("origin")
    if not origin or not bucket:
        return
    try:
        rec = await cached_bucket(catalog, request, bucket)
    except Exception:  # no such bucket, metadata unavailable...: the answer goes out as is
        return
    if not rec.cors:
        return
    _add_vary(response.headers)
    rule = find_rule(rec.cors, origin, request.method)
    if rule is not None:
        response.headers.update(rule_headers(rule, origin))


# Handlers --------------------------------------------------------------------------

async def preflight(req: S3Request) -> Response:
    origin = req.headers.get("origin")
    if not origin:
        raise S3Error("BadRequest", "Insufficient information. Origin request header needed.")
    method = req.headers.get("access-control-request-method")
    if method not in METHODS:
        raise S3Error("BadRequest", f"Invalid Access-Control-Request-Method: {method}")
    resource = "OBJECT" if req.key else "BUCKET"
    rec = await cached_bucket(req.catalog, req.request, req.bucket)
    if not rec.cors:
        raise S3Error("AccessForbidden", "CORSResponse: CORS is not enabled for this bucket.",
                      Method=method, ResourceType=resource)
    announced = req.headers.get("access-control-request-headers", "")
    names = [h.strip().lower() for h in announced.split(",") if h.strip()]
    rule = find_rule(rec.cors, origin, method, names)
    if rule is None:
        raise S3Error("AccessForbidden", NOT_ALLOWED, Method=method, ResourceType=resource)
    headers = rule_headers(rule, origin)
    if names:
        headers["Access-Control-Allow-Headers"] = ", ".join(names)
    headers["Vary"] = VARY
    return Response(status_code=200, headers=headers)


async def put_cors(req: S3Request) -> Response:
    rules = parse_cors(await read_small_body(req.request, MAX_XML_BODY, _malformed()))

    await req.catalog.update_bucket(req.bucket, cors=rules)
    return Response(status_code=200)


async def get_cors(req: S3Request) -> Response:
    rec = await req.catalog.bucket(req.bucket)
    if not rec.cors:
        raise S3Error("NoSuchCORSConfiguration", "The CORS configuration does not exist",
                      BucketName=req.bucket)
    rules = []
    for rule in rec.cors:
        children: list = [("ID", rule["id"])] if rule.get("id") else []
        children += [("AllowedOrigin", o) for o in rule["origins"]]
        children += [("AllowedMethod", m) for m in rule["methods"]]
        children += [("AllowedHeader", h) for h in rule["headers"]]
        children += [("ExposeHeader", h) for h in rule["expose"]]
        if rule["max_age"] is not None:
            children.append(("MaxAgeSeconds", rule["max_age"]))
        rules.append(("CORSRule", children))
    return xml_response("CORSConfiguration", rules)


async def delete_cors(req: S3Request) -> Response:
    await req.catalog.update_bucket(req.bucket, cors=[])
    return Response(status_code=204)
