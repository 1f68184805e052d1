"""Metadata records and their keys: the schema of everything the gateway stores.

All records are JSON dicts on the nodes (LWW by their ``hlc`` stamp); these dataclasses
are the typed view. Every record carries ``v`` (schema version) from day one.

Key layout (one RocksDB key space per node, partitioned by bucket for placement):

    b/{bucket}                          bucket record      partition BUCKETS
    o/{bucket}/{key}                    current object     partition = bucket
    v/{bucket}/{key}\\0{suffix}          object version     partition = bucket
    u/{bucket}/{key}\\0{upload_id}       multipart upload   partition = bucket
    p/{bucket}/{upload_id}/{part:05d}   uploaded part      partition = bucket

Bucket names cannot contain '/', so ``o/{bucket}/`` is an unambiguous prefix and keys
sort in S3's (UTF-8 byte) listing order. In a bucket with versioning configured every
version also has a ``v/`` record, newest first per key (gateway/versioning.py says how).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any

SCHEMA = 1
BUCKETS = "__buckets__"


def bucket_key(bucket: str) -> str:
    return f"b/{bucket}"


def object_key(bucket: str, key: str) -> str:
    return f"o/{bucket}/{key}"


def object_prefix(bucket: str) -> str:
    return f"o/{bucket}/"


def upload_key(bucket: str, key: str, upload_id: str) -> str:
    return f"u/{bucket}/{key}\x00{upload_id}"


def upload_prefix(bucket: str) -> str:
    return f"u/{bucket}/"


def part_key(bucket: str, upload_id: str, number: int) -> str:
    return f"p/{bucket}/{upload_id}/{number:05d}"


def part_prefix(bucket: str, upload_id: str) -> str:
    return f"p/{bucket}/{upload_id}/"


def prefix_end(prefix: str) -> str:
    """The smallest key greater than every key starting with ``prefix``."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


# slots: a GET builds one of each per shard of the object (96 for a 64 MiB 4+2 object);
# slotted ones build in two thirds of the time.
@dataclass(slots=True)
class ShardRef:
    node: str  # node name at write time; repair rewrites it
    hash: str  # BLAKE3 hex (shortened) of the shard bytes


class BlockRef:
    """One block of an object: shard ids on nodes are f"{id}.{index}"; ``size`` is its
    plaintext bytes; ``shards`` is indexed by shard number (None = not written).

    A decoded record builds a block's ShardRefs only when ``shards`` is first read: a
    range GET of a 64 MiB object reads one block of sixteen, and building all 96 refs
    took 30 of the 39 µs its record took to decode (a tenth of the GET's gateway CPU).
    """

    __slots__ = ("id", "size", "_shards", "_stored")

    def __init__(self, id: str, size: int, shards: list[ShardRef | None]) -> None:
        self.id = id
        self.size = size
        self._shards: list[ShardRef | None] | None = shards
        self._stored: list[list[str] | None] | None = None

    @property
    def shards(self) -> list[ShardRef | None]:
        if self._shards is None:
            stored, self._stored = self._stored or [], None
            self._shards = [None if s is None else ShardRef(s[0], s[1]) for s in stored]
        return self._shards

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BlockRef):
            return NotImplemented
        return (self.id, self.size, self.shards) == (other.id, other.size, other.shards)

    def __repr__(self) -> str:
        return f"BlockRef(id={self.id!r}, size={self.size!r}, shards={self.shards!r})"

    def to_dict(self) -> dict[str, Any]:
        shards = self._stored if self._shards is None else [
            None if s is None else [s.node, s.hash] for s in self._shards]
        return {"id": self.id, "size": self.size, "shards": shards}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BlockRef:
        block = cls(d["id"], d["size"], None)  # type: ignore[arg-type]
        block._stored = d["shards"]
        return block


@functools.cache
def _field_names(cls: type) -> frozenset[str]:
    # Cached: dataclasses.fields() per record was 7 % of the gateway's listing CPU.
    return frozenset(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]


class Record:
    """JSON round trip shared by every record: blocks in their compact form, unknown
    fields (from a newer schema) ignored rather than fatal."""

    def to_dict(self) -> dict[str, Any]:
        blocks = getattr(self, "blocks", None)
        if not blocks:
            return dataclasses.asdict(self)  # type: ignore[call-overload]
        # Blocks are not dataclasses (their shard refs decode lazily): asdict would
        # deep-copy them only to be replaced.
        d = dataclasses.asdict(dataclasses.replace(self, blocks=[]))  # type: ignore[type-var]
        d["blocks"] = [b.to_dict() for b in blocks]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Any:
        d = dict(d)
        if "blocks" in d:
            d["blocks"] = [BlockRef.from_dict(b) for b in d["blocks"]]
        if "parts" in d:
            d["parts"] = [PartInfo(**p) for p in d["parts"]]
        known = _field_names(cls)
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class PartInfo:
    number: int
    size: int
    etag: str
    blocks: int  # how many of the object's blocks belong to this part
    checksum: str | None = None  # the part's x-amz-checksum value (base64), if any


@dataclass
class ObjectRecord(Record):
    bucket: str
    key: str
    hlc: list
    size: int = 0
    etag: str = ""
    last_modified: float = 0.0
    content_type: str = "binary/octet-stream"
    user_meta: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # Content-Encoding, Cache-Control...
    checksum: list | None = None  # [algorithm, b64, "FULL_OBJECT" | "COMPOSITE"]
    policy: dict[str, Any] = field(default_factory=dict)
    inline: str | None = None  # base64 body of small objects
    blocks: list[BlockRef] = field(default_factory=list)
    parts: list[PartInfo] = field(default_factory=list)
    version_id: str = "null"
    version_hlc: list | None = None  # creation stamp; None: written unversioned, no v/ record
    delete_marker: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    sse: dict[str, Any] = field(default_factory=dict)  # wrapped data key (gateway/sse.py)
    deleted: bool = False
    v: int = SCHEMA



@dataclass
class BucketRecord(Record):
    name: str
    hlc: list
    created: float = 0.0
    policy: dict[str, Any] = field(default_factory=dict)
    owner: str = ""
    versioning: str = ""  # "", "Enabled", "Suspended"
    tags: dict[str, str] = field(default_factory=dict)  # empty: GetBucketTagging NoSuchTagSet
    access_policy: str = ""  # bucket policy JSON as the client sent it (gateway/bucketpolicy.py)
    cors: list[dict[str, Any]] = field(default_factory=list)  # CORS rules (gateway/cors.py)
    website: dict[str, str] = field(default_factory=dict)  # index/error docs (gateway/website.py)
    deleted: bool = False
    v: int = SCHEMA



@dataclass
class UploadRecord(Record):
    bucket: str
    key: str
    upload_id: str
    hlc: list
    initiated: float = 0.0
    content_type: str = "binary/octet-stream"
    user_meta: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    checksum_algorithm: str | None = None
    checksum_type: str | None = None  # "COMPOSITE" | "FULL_OBJECT" with an algorithm
    policy: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)  # x-amz-tagging, given on creation
    sse: dict[str, Any] = field(default_factory=dict)  # the parts' wrapped data key
    deleted: bool = False
    v: int = SCHEMA



@dataclass
class PartRecord(Record):
    upload_id: str
    number: int
    hlc: list
    size: int = 0
    etag: str = ""
    last_modified: float = 0.0
    checksum: list | None = None
    blocks: list[BlockRef] = field(default_factory=list)
    borrowed: list[str] = field(default_factory=list)  # ids of blocks another object owns
    deleted: bool = False
    v: int = SCHEMA

