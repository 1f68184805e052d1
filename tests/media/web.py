"""Plain HTTP for the media tests: the harness's request, with lower-case header names."""

from tests import harness


def http(method: str, url: str, data: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    status, found, body = harness.http(method, url, data, headers)
    return status, {k.lower(): v for k, v in found.items()}, body


def error_code(body: bytes) -> str:
    return body.split(b"<Code>")[1].split(b"</Code>")[0].decode()
