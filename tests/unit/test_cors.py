"""CORS rule parsing and matching (gateway/cors.py): pure functions."""

import pytest

from gateway.cors import find_rule, parse_cors, rule_headers
from gateway.errors import S3Error


def config(*rules: str) -> bytes:
    return ("<CORSConfiguration>" + "".join(f"<CORSRule>{r}</CORSRule>" for r in rules)
            + "</CORSConfiguration>").encode()


RULES = parse_cors(config(
    "<AllowedOrigin>https://*.example.com</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
    "<AllowedMethod>HEAD</AllowedMethod><AllowedHeader>range</AllowedHeader>"
    "<AllowedHeader>x-amz-*</AllowedHeader><ExposeHeader>ETag</ExposeHeader>"
    "<MaxAgeSeconds>300</MaxAgeSeconds>",
    "<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
    "<AllowedHeader>*</AllowedHeader>",
))


def test_first_matching_rule_wins_and_origin_wildcards() -> None:
    rule = find_rule(RULES, "https://cdn.example.com", "HEAD")
    assert rule is RULES[0]
    assert find_rule(RULES, "http://cdn.example.com", "HEAD") is None  # scheme differs
    assert find_rule(RULES, "http://other.org", "GET") is RULES[1]
    assert find_rule(RULES, "http://other.org", "PUT") is None


def test_requested_headers_must_all_be_allowed() -> None:
    origin = "https://a.example.com"
    assert find_rule(RULES, origin, "HEAD", ["range", "x-amz-date"]) is RULES[0]
    assert find_rule(RULES, origin, "HEAD", ["Range", "x-custom"]) is None
    assert find_rule(RULES, origin, "GET", ["x-custom"]) is RULES[1]  # '*' header rule


def test_headers_granted_by_a_rule() -> None:
    specific = rule_headers(RULES[0], "https://a.example.com")
    assert specific["Access-Control-Allow-Origin"] == "https://a.example.com"
    assert specific["Access-Control-Allow-Credentials"] == "true"
    assert specific["Access-Control-Expose-Headers"] == "ETag"
    assert specific["Access-Control-Max-Age"] == "300"
    assert specific["Access-Control-Allow-Methods"] == "GET, HEAD"
    anyone = rule_headers(RULES[1], "http://x.org")
    assert anyone["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in anyone


@pytest.mark.parametrize("body,code", [
    (b"<CORSConfiguration/>", "MalformedXML"),
    (b"<Other><CORSRule/></Other>", "MalformedXML"),
    (config("<AllowedMethod>GET</AllowedMethod>"), "MalformedXML"),
    (config("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod>"),
     "InvalidRequest"),
    (config("<AllowedOrigin>*.*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"),
     "InvalidRequest"),
    (config("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
            "<MaxAgeSeconds>soon</MaxAgeSeconds>"), "MalformedXML"),
])
def test_bad_configurations_are_refused(body: bytes, code: str) -> None:
    with pytest.raises(S3Error) as err:
        parse_cors(body)
    assert err.value.code == code
