"""AWS Signature Version 4 verification for S3 requests: header auth and presigned URLs.

This is the one SigV4 implementation in Shoal (verify side). ``verify`` rebuilds the
canonical request from the request exactly as it arrived and compares signatures in
constant time. It never reads the body: the payload hash the client declared is what was
signed, and checking the body against it is the data path's job (``checksums.BodyVerifier``
for ``signed``, ``chunked.ChunkedDecoder`` for the streaming modes).

What the signature binds, and how the router must read the request for that to hold:

* The path is percent-decoded with plain ``%XX`` decoding ('+' stays '+'). A request
  verifies when the client signed either the path bytes exactly as sent or their AWS
  re-encoding (every byte but ``A-Za-z0-9-._~/`` as upper-case ``%XX``). Both decode to the
  same key, so a client that sent '+' raw, or lower-case escapes, still verifies, and no
  re-encoding can change which key is addressed.
* The query is read the way ``urllib.parse.parse_qsl`` (Starlette's ``query_params``)
  reads it: '+' is a space. The signed canonical query is either the AWS re-encoding of
  those decoded pairs or the raw pairs as sent, sorted by name then value.
* Every ``x-amz-*`` header present must be signed (``x-amz-content-sha256`` is bound by
  the canonical request's last line instead), as S3 requires; ``host`` must be signed.

Any region is accepted (the caller may check ``AuthResult.scope``); the service must be
``s3``. Derived signing keys are cached (LRU over secret, date, region).
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Literal
from urllib.parse import quote, unquote_to_bytes

from gateway.errors import S3Error

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_SKEW_SECONDS = 15 * 60
MAX_EXPIRES_SECONDS = 7 * 24 * 3600

PayloadMode = Literal[
    "signed", "unsigned", "streaming-signed", "streaming-signed-trailer",
    "streaming-unsigned-trailer",
]
_MODES: dict[str, PayloadMode] = {
    UNSIGNED_PAYLOAD: "unsigned",
    STREAMING_SIGNED: "streaming-signed",
    STREAMING_SIGNED_TRAILER: "streaming-signed-trailer",
    STREAMING_UNSIGNED_TRAILER: "streaming-unsigned-trailer",
}
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_AMZ_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z")
_QUERY_AUTH = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature")
_QUERY_REQUIRED = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date",
                   "X-Amz-SignedHeaders", "X-Amz-Expires")
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_UNSUPPORTED = ("The authorization mechanism you have provided is not supported. "
                "Please use AWS4-HMAC-SHA256.")
_CREDENTIAL_FORM = ('the Credential is mal-formed; expecting '
                    '"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".')


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str


@dataclass(frozen=True)
class AuthResult:
    """A verified request: who signed it and what it promised about its body."""

    access_key: str
    payload_mode: PayloadMode
    payload_sha256: str | None  # the hex the client declared, when mode == "signed"
    signing_key: bytes | None  # derived key (for chunk signatures)
    scope: str  # "20261127/us-east-1/s3/aws4_request"
    amz_date: str  # "20261127T101010Z"
    seed_signature: str  # the request signature (first chunk chains from it)


@lru_cache(maxsize=1024)
def derive_signing_key(secret: str, date: str, region: str, service: str = "s3") -> bytes:
    """kSigning = HMAC chain over date, region, service and "aws4_request"."""
    key = hmac.new(f"AWS4{secret}".encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def hmac_hex(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()


def signatures_equal(expected: str, provided: str) -> bool:
    """Constant-time comparison of two hex signatures (any bytes in ``provided``)."""
    return hmac.compare_digest(expected.encode(), provided.encode("utf-8", "surrogateescape"))


@dataclass(frozen=True)
class _Parsed:
    """The auth fields of one request, from the Authorization header or the query."""

    presigned: bool
    access_key: str
    date: str
    region: str
    signed_headers: list[str]
    signature: str
    amz_date: str
    expires: int


def verify(
    method: str,
    raw_path: bytes,
    query_string: bytes,
    headers: Sequence[tuple[bytes, bytes]],
    lookup_secret: Callable[[str], str | None],
    now: float | None = None,
) -> AuthResult | None:
    """Verify a SigV4-signed request; None when it carries no authentication at all.

    ``headers`` are the raw ASGI header pairs (lower-case names). ``lookup_secret`` maps an
    access key to its secret (None: unknown). Raises ``S3Error`` for every failure.
    """
    now = time.time() if now is None else now
    values: dict[str, list[bytes]] = {}
    for name, value in headers:
        values.setdefault(name.decode("latin-1").lower(), []).append(value)
    pairs = _split_query(query_string)
    params = _query_params(pairs)
    names = params.keys()
    authorization = values.get("authorization")
    query_auth = any(n in names for n in _QUERY_AUTH)

    if authorization and query_auth:
        raise S3Error("InvalidArgument", "Only one auth mechanism allowed; only the "
                      "X-Amz-Algorithm query parameter, Signature query string parameter or "
                      "the Authorization header should be specified")
    if not authorization and not query_auth:
        if "AWSAccessKeyId" in names and "Signature" in names:
            raise S3Error("InvalidRequest", _UNSUPPORTED)
        return None

    if authorization:
        auth = _parse_authorization(authorization[0].decode("latin-1"), values)
        declared = _single(values, "x-amz-content-sha256")
        if declared is None:
            raise S3Error("InvalidRequest",
                          "Missing required header for this request: x-amz-content-sha256")
    else:
        auth = _parse_query(params)
        declared = params.get("X-Amz-Content-Sha256")
        if declared is None:
            # botocore's presigner signs a body hash header when one is set, else UNSIGNED.
            declared = _single(values, "x-amz-content-sha256") or UNSIGNED_PAYLOAD
    mode = _payload_mode(declared)

    secret = lookup_secret(auth.access_key)
    if secret is None:
        raise S3Error("InvalidAccessKeyId",
                      "The AWS Access Key Id you provided does not exist in our records.",
                      AWSAccessKeyId=auth.access_key)
    _check_time(auth, now)

    scope = f"{auth.date}/{auth.region}/s3/aws4_request"
    key = derive_signing_key(secret, auth.date, auth.region)
    header_block = _canonical_headers(auth.signed_headers, values)
    first: tuple[str, str] | None = None
    for path in _path_candidates(raw_path):
        for query in _query_candidates(pairs, drop_signature=auth.presigned):
            canonical = "\n".join((method.upper(), path, query, header_block,
                                   ";".join(auth.signed_headers), declared))
            digest = hashlib.sha256(canonical.encode("latin-1", "replace")).hexdigest()
            string_to_sign = f"{ALGORITHM}\n{auth.amz_date}\n{scope}\n{digest}"
            if signatures_equal(hmac_hex(key, string_to_sign), auth.signature):
                _check_all_amz_signed(auth.signed_headers, values)
                return AuthResult(
                    access_key=auth.access_key,
                    payload_mode=mode,
                    payload_sha256=declared.lower() if mode == "signed" else None,
                    signing_key=key,
                    scope=scope,
                    amz_date=auth.amz_date,
                    seed_signature=auth.signature.lower(),
                )
            first = first or (canonical, string_to_sign)
    assert first is not None
    raise S3Error(
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
        AWSAccessKeyId=auth.access_key,
        StringToSign=first[1],
        SignatureProvided=_NOT_XML.sub("?", auth.signature),
        CanonicalRequest=_NOT_XML.sub("?", first[0]),
    )


# -- parsing ---------------------------------------------------------------------------------


def _parse_authorization(value: str, values: dict[str, list[bytes]]) -> _Parsed:
    def malformed(why: str) -> S3Error:
        return S3Error("AuthorizationHeaderMalformed", f"The authorization header is malformed; {why}")

    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise S3Error("InvalidRequest", _UNSUPPORTED)
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, field = part.strip().partition("=")
        if sep:
            fields[name.strip()] = field.strip()
    if not all(fields.get(k) for k in ("Credential", "SignedHeaders", "Signature")):
        raise malformed("the authorization header requires three components: "
                        "Credential, SignedHeaders, and Signature.")
    access_key, date, region = _parse_credential(fields["Credential"], malformed)
    amz_date = _request_date(values)
    if amz_date[:8] != date:
        raise malformed("Invalid credential date. Date is not the same as X-Amz-Date.")
    return _Parsed(False, access_key, date, region,
                   _parse_signed_headers(fields["SignedHeaders"], malformed),
                   fields["Signature"], amz_date, 0)


def _parse_query(params: dict[str, str]) -> _Parsed:
    def malformed(why: str) -> S3Error:
        return S3Error("AuthorizationQueryParametersError", why)

    got = {name: params.get(name) for name in _QUERY_REQUIRED}
    if any(not v for v in got.values()):
        raise malformed("Query-string authentication version 4 requires the X-Amz-Algorithm, "
                        "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, "
                        "and X-Amz-Expires parameters.")
    if got["X-Amz-Algorithm"] != ALGORITHM:
        raise malformed('X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"')
    access_key, date, region = _parse_credential(
        got["X-Amz-Credential"] or "",
        lambda why: malformed(f"Error parsing the X-Amz-Credential parameter; {why}"))
    amz_date = got["X-Amz-Date"] or ""
    if _epoch(amz_date) is None:
        raise malformed("X-Amz-Date must be in the ISO8601 Long Format "
                        "\"yyyyMMdd'T'HHmmss'Z'\"")
    if amz_date[:8] != date:
        raise malformed("Invalid credential date. Date is not the same as X-Amz-Date.")
    raw_expires = got["X-Amz-Expires"] or ""
    if not raw_expires.isdigit() or not 1 <= int(raw_expires) <= MAX_EXPIRES_SECONDS:
        raise malformed("X-Amz-Expires must be between 1 and 604800 seconds (one week)")
    return _Parsed(True, access_key, date, region,
                   _parse_signed_headers(got["X-Amz-SignedHeaders"] or "", malformed),
                   got["X-Amz-Signature"] or "", amz_date, int(raw_expires))


def _parse_credential(value: str, malformed: Callable[[str], S3Error]) -> tuple[str, str, str]:
    parts = value.rsplit("/", 4)
    if len(parts) != 5 or not parts[0] or not re.fullmatch(r"\d{8}", parts[1]) \
            or not parts[2] or parts[4] != "aws4_request":
        raise malformed(_CREDENTIAL_FORM)
    if parts[3] != "s3":
        raise malformed(f'incorrect service "{parts[3]}". This endpoint belongs to "s3".')
    return parts[0], parts[1], parts[2]


def _parse_signed_headers(value: str, malformed: Callable[[str], S3Error]) -> list[str]:
    names = [n.strip().lower() for n in value.split(";")]
    if "" in names:
        raise malformed("SignedHeaders contains an empty header name.")
    if "host" not in names:
        raise malformed("SignedHeaders must include host.")
    return names


def _request_date(values: dict[str, list[bytes]]) -> str:
    """X-Amz-Date, or the Date header turned into the same form (botocore may send Date)."""
    amz = _single(values, "x-amz-date")
    if amz is not None and _epoch(amz) is not None:
        return amz
    date = _single(values, "date") if amz is None else None
    if date is not None:
        try:
            return parsedate_to_datetime(date).strftime("%Y%m%dT%H%M%SZ")
        except (TypeError, ValueError):
            pass
    raise S3Error("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header")


def _epoch(amz_date: str) -> int | None:
    match = _AMZ_DATE.fullmatch(amz_date)
    if match is None:
        return None
    try:  # datetime() validates the ranges; time.strptime would cost a third of verify()
        return calendar.timegm(datetime(*map(int, match.groups())).timetuple())
    except ValueError:
        return None


def _check_time(auth: _Parsed, now: float) -> None:
    signed_at = _epoch(auth.amz_date)
    assert signed_at is not None  # both parsers reject an unparseable date
    if auth.presigned:
        if now > signed_at + auth.expires:
            raise S3Error("AccessDenied", "Request has expired",
                          Expires=_iso(signed_at + auth.expires), ServerTime=_iso(now))
        if signed_at - now > MAX_SKEW_SECONDS:
            raise S3Error("AccessDenied", "Request is not valid yet")
    elif abs(now - signed_at) > MAX_SKEW_SECONDS:
        raise S3Error("RequestTimeTooSkewed",
                      "The difference between the request time and the current time is too "
                      "large.", RequestTime=auth.amz_date, ServerTime=_iso(now),
                      MaxAllowedSkewMilliseconds=str(MAX_SKEW_SECONDS * 1000))


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _payload_mode(declared: str) -> PayloadMode:
    if declared in _MODES:
        return _MODES[declared]
    if _HEX64.fullmatch(declared):
        return "signed"
    raise S3Error("InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, "
                  "STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, "
                  "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, or a valid sha256 value.")


def _check_all_amz_signed(signed: list[str], values: dict[str, list[bytes]]) -> None:
    unsigned = sorted(n for n in values if n.startswith("x-amz-") and n not in signed
                      and n != "x-amz-content-sha256")
    if unsigned:
        raise S3Error("AccessDenied", "There were headers present in the request which were "
                      "not signed", HeadersNotSigned=", ".join(unsigned))


def _single(values: dict[str, list[bytes]], name: str) -> str | None:
    got = values.get(name)
    return got[0].decode("latin-1").strip() if got else None


# -- canonical forms -------------------------------------------------------------------------


def _canonical_headers(signed: list[str], values: dict[str, list[bytes]]) -> str:
    """One "name:value" line per signed header (values trimmed, inner runs of spaces
    collapsed, repeats joined by ','), each ending in a newline."""
    lines = []
    for name in signed:
        joined = b",".join(b" ".join(v.split()) for v in values.get(name, []))
        lines.append(f"{name}:{joined.decode('latin-1')}\n")
    return "".join(lines)


def _path_candidates(raw_path: bytes) -> list[str]:
    raw = raw_path.decode("latin-1") or "/"
    canonical = quote(unquote_to_bytes(raw_path or b"/"), safe="/~")
    return [canonical] if canonical == raw else [canonical, raw]


def _split_query(query_string: bytes) -> list[tuple[str, str]]:
    pairs = []
    for piece in query_string.decode("latin-1").split("&"):
        if piece:
            name, _, value = piece.partition("=")
            pairs.append((name, value))
    return pairs


def _query_candidates(pairs: list[tuple[str, str]], drop_signature: bool) -> list[str]:
    kept = [(n, v) for n, v in pairs
            if not (drop_signature and _decode(n, plus=True) == "X-Amz-Signature")]
    canonical = "&".join(f"{n}={v}" for n, v in sorted(
        (_aws_encode(n), _aws_encode(v)) for n, v in kept))
    raw = "&".join(f"{n}={v}" for n, v in sorted(kept))
    return [canonical] if canonical == raw else [canonical, raw]


def _pct_bytes(text: str, plus: bool) -> bytes:
    data = text.encode("latin-1")
    return unquote_to_bytes(data.replace(b"+", b" ") if plus else data)


# A presigned request decodes and re-encodes its query tokens some 70 times (145 µs per
# verification here); the names and most values repeat across requests, so short tokens
# are memoised. Longer ones (rare, and client-chosen) are not kept.
_MEMO_MAX = 256


def _encode_token(text: str) -> str:
    return quote(_pct_bytes(text, plus=True), safe="-_.~")


def _decode_token(text: str, plus: bool) -> str:
    return _pct_bytes(text, plus).decode("utf-8", "replace")


_encode_memo = lru_cache(maxsize=4096)(_encode_token)
_decode_memo = lru_cache(maxsize=4096)(_decode_token)


def _aws_encode(text: str) -> str:
    return (_encode_memo if len(text) <= _MEMO_MAX else _encode_token)(text)


def _decode(text: str, plus: bool) -> str:
    return (_decode_memo if len(text) <= _MEMO_MAX else _decode_token)(text, plus)


def _query_params(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Decoded name -> decoded value, the first of each name (decoded once: looking each
    name up by decoding every pair again was a third of a presigned verification)."""
    params: dict[str, str] = {}
    for n, v in pairs:
        params.setdefault(_decode(n, plus=True), _decode(v, plus=True))
    return params
