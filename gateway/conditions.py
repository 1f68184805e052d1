"""Conditional requests: preconditions on reads, writes and copy sources, as S3 evaluates them.

Reads (GetObject, HeadObject) follow RFC 7232 section 6, which is S3's order:

1. ``If-Match`` present and false → 412; when it is true, ``If-Unmodified-Since`` is not
   looked at (S3: If-Match true + If-Unmodified-Since false → 200).
2. otherwise ``If-Unmodified-Since`` false → 412.
3. ``If-None-Match`` present and false (an ETag matched) → 304; when present,
   ``If-Modified-Since`` is not looked at.
4. otherwise ``If-Modified-Since`` false (not modified) → 304.
5. ``If-Range`` decides whether a ``Range`` applies at all (false → the whole object, 200).

ETags compare by value: quotes and a weak ``W/`` prefix are ignored, ``*`` matches any
object, and a header may list several ETags separated by commas. Dates that do not parse
are ignored, as RFC 7232 requires. Times compare at one-second resolution, the resolution
of ``Last-Modified``.

Writes (PutObject, CompleteMultipartUpload, CopyObject destination) accept
``If-None-Match: *`` (create only) and ``If-Match: <etag>`` (replace only that version):
412 PreconditionFailed when the condition is false, 404 NoSuchKey for ``If-Match`` on a
missing key, 501 NotImplemented for any other ``If-None-Match`` value or both headers at
once. Shoal has no compare-and-swap in its metadata quorum, so a write's precondition is
checked before the body is read and again after the body is stored, just before the
record is committed. A condition that held at the first check and fails at the second
means another writer got in during the upload: 409 ConditionalRequestConflict, as S3
answers for that race. The window between the second check and the quorum write (a few
milliseconds) is not closed: two conditional writers that both pass the second check
within it can both succeed.

Copy sources (``x-amz-copy-source-if-*``) use the read rules with one difference S3
documents: every failure is 412, never 304.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

from gateway.errors import S3Error


def parse_http_date(value: str | None) -> float | None:
    """Seconds since the epoch for an HTTP date (RFC 1123, 850 or asctime); None if bad."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:  # asctime form carries no zone: it is GMT by definition
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _bare(tag: str) -> str:
    tag = tag.strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    return tag.strip('"')


def etag_matches(header: str, etag: str) -> bool:
    """True when ``header`` (``*`` or a comma-separated ETag list) names ``etag``."""
    if header.strip() == "*":
        return True
    wanted = _bare(etag)
    return any(_bare(t) == wanted for t in header.split(",") if t.strip())


def _modified_since(last_modified: float, since: float) -> bool:
    return int(last_modified) > int(since)


def _failed(condition: str) -> S3Error:
    return S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did "
                   "not hold", Condition=condition)


def _evaluate(get: Mapping[str, str], names: tuple[str, str, str, str], etag: str,
              last_modified: float) -> str | None:
    """Which condition failed, or None. ``names`` = (match, unmodified, none-match,
    modified) header names; the answer is the header name that failed."""
    if_match, if_unmodified, if_none_match, if_modified = names
    match = get.get(if_match)
    if match is not None:
        if not etag_matches(match, etag):
            return if_match
    else:
        since = parse_http_date(get.get(if_unmodified))
        if since is not None and _modified_since(last_modified, since):
            return if_unmodified
    none_match = get.get(if_none_match)
    if none_match is not None:
        if etag_matches(none_match, etag):
            return if_none_match
    else:
        since = parse_http_date(get.get(if_modified))
        if since is not None and not _modified_since(last_modified, since):
            return if_modified
    return None


_READ = ("if-match", "if-unmodified-since", "if-none-match", "if-modified-since")
_COPY = ("x-amz-copy-source-if-match", "x-amz-copy-source-if-unmodified-since",
         "x-amz-copy-source-if-none-match", "x-amz-copy-source-if-modified-since")
_PRETTY = {"if-match": "If-Match", "if-unmodified-since": "If-Unmodified-Since",
           "if-none-match": "If-None-Match", "if-modified-since": "If-Modified-Since"}


def check_read(headers: Mapping[str, str], etag: str, last_modified: float) -> bool:
    """For GET/HEAD: raise 412 PreconditionFailed, return True for 304, False to serve."""
    failed = _evaluate(headers, _READ, etag, last_modified)
    if failed in ("if-match", "if-unmodified-since"):
        raise _failed(_PRETTY[failed])
    return failed is not None


def check_copy_source(headers: Mapping[str, str], etag: str, last_modified: float) -> None:
    """x-amz-copy-source-if-*: every failed condition is 412 PreconditionFailed."""
    failed = _evaluate(headers, _COPY, etag, last_modified)
    if failed is not None:
        raise _failed(failed)


def range_applies(headers: Mapping[str, str], etag: str, last_modified: float) -> bool:
    """If-Range: a Range is honoured only when the validator still names this object
    (an ETag must match exactly; a date must equal Last-Modified)."""
    value = headers.get("if-range")
    if value is None:
        return True
    value = value.strip()
    if value.startswith('"') or value.startswith("W/"):
        return not value.startswith("W/") and _bare(value) == _bare(etag)
    when = parse_http_date(value)
    if when is None:
        return _bare(value) == _bare(etag)  # an unquoted ETag, as some clients send
    return int(when) == int(last_modified)


@dataclass(frozen=True)
class WriteCondition:
    """A conditional write: ``create_only`` (If-None-Match: *) or ``match`` (If-Match)."""

    create_only: bool = False
    match: str | None = None

    def check(self, current_etag: str | None, *, second: bool = False) -> None:
        """Raise unless the write may go ahead over the object whose ETag is
        ``current_etag`` (None: no object). ``second`` marks the check after the body was
        stored: a failure then is a concurrent writer's doing (409)."""
        ok = True
        if self.create_only:
            ok = current_etag is None
        elif self.match is not None:
            if current_etag is None:
                if second:
                    ok = False
                else:
                    raise S3Error("NoSuchKey", "The specified key does not exist.")
            else:
                ok = etag_matches(self.match, current_etag)
        if ok:
            return
        if second:
            raise S3Error("ConditionalRequestConflict", "A conflicting conditional operation "
                          "is currently in progress against this resource. Please try again.")
        raise _failed("If-None-Match" if self.create_only else "If-Match")


def write_condition(headers: Mapping[str, str]) -> WriteCondition | None:
    """The precondition of a write request, or None when it has none."""
    none_match, match = headers.get("if-none-match"), headers.get("if-match")
    if none_match is None and match is None:
        return None
    if none_match is not None and match is not None:
        raise S3Error("NotImplemented", "A header you provided implies functionality that is "
                      "not implemented", Header="If-Match,If-None-Match")
    if none_match is not None:
        if none_match.strip() != "*":
            raise S3Error("NotImplemented", "A header you provided implies functionality that "
                          "is not implemented", Header="If-None-Match")
        return WriteCondition(create_only=True)
    return WriteCondition(match=match)
