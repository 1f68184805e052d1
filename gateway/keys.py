"""Access keys stored in the cluster, their per-bucket permissions, and the gateway's cache.

Records live in the metadata partition ``__keys__`` under ``k/{access_key}`` (replicated
and quorum-read like every record). The secret is stored sealed (AES-256-GCM) with a key
derived from the cluster secret, bound to the access key as associated data, so a node's
disk never holds a usable secret and a sealed secret cannot be moved to another key.

Permissions are per bucket and cumulative: ``read`` (get, head, list), ``write`` (read +
put, delete, multipart), ``owner`` (write + delete the bucket, its encryption settings).
The gateway's bootstrap credentials (SHOAL_ACCESS_KEY/SHOAL_SECRET_KEY) are an admin key:
every permission on every bucket, not stored in the cluster.

Cache: SigV4 verification needs the secret on every request, so the records are cached
per gateway process for ``ttl`` seconds (default 5), unknown keys too. A key deleted (or a
permission revoked) through another gateway process keeps working here for at most ``ttl``
seconds; the process that made the change drops its own entry at once.
"""

from __future__ import annotations

import base64
import re
import secrets as random
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from cluster.process import new_secret_key
from gateway.errors import S3Error
from gateway.records import SCHEMA, Record
from gateway.sealing import SealError, derive_key, seal, unseal

if TYPE_CHECKING:
    from gateway.catalog import Catalog

KEYS = "__keys__"
LEVELS = ("read", "write", "owner")
CACHE_TTL = 5.0
CACHE_MAX = 10_000
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


def key_key(access_key: str) -> str:
    return f"k/{access_key}"


@dataclass
class KeyRecord(Record):
    access_key: str
    hlc: list
    sealed_secret: str = ""  # base64 of seal(derived key, secret, aad=access key)
    name: str = ""
    created: float = 0.0
    grants: dict[str, str] = field(default_factory=dict)  # bucket -> read|write|owner
    deleted: bool = False
    v: int = SCHEMA


@dataclass(frozen=True)
class Principal:
    """Who signed a request and what they may touch."""

    access_key: str
    admin: bool = False
    grants: dict[str, str] = field(default_factory=dict)

    def allows(self, bucket: str, level: str) -> bool:
        if self.admin:
            return True
        have = self.grants.get(bucket)
        return have is not None and LEVELS.index(have) >= LEVELS.index(level)


def credential_key(headers: list[tuple[bytes, bytes]], query_string: bytes) -> str | None:
    """The access key a request claims to be signed with (unverified), or None."""
    for name, value in headers:
        if name.lower() == b"authorization":
            m = _CREDENTIAL.search(value.decode("latin-1"))
            return m.group(1) if m else None
    if b"X-Amz-Credential" in query_string:
        for name, value in parse_qsl(query_string.decode("latin-1")):
            if name == "X-Amz-Credential":
                return value.split("/", 1)[0] or None
    return None


def check_level(level: str) -> str:
    if level not in LEVELS:
        raise ValueError(f"permission must be one of {', '.join(LEVELS)}, got {level!r}")
    return level


class KeyStore:
    def __init__(self, catalog: Catalog, cluster_secret: bytes, admins: dict[str, str],
                 ttl: float = CACHE_TTL) -> None:
        self.catalog = catalog
        self._seal_key = derive_key(cluster_secret, "access-key secrets")
        self._admins = dict(admins)
        self.ttl = ttl
        # access key -> (expires at (monotonic), principal or None, secret or None)
        self._cache: OrderedDict[str, tuple[float, Principal | None, str | None]] = OrderedDict()

    # Request path --------------------------------------------------------------

    async def prefetch(self, access_key: str | None) -> None:
        """Load ``access_key``'s record into the cache (unless fresh) before SigV4 runs."""
        if access_key is None or access_key in self._admins:
            return
        entry = self._cache.get(access_key)
        if entry is not None and entry[0] > time.monotonic():
            return
        rec = await self._read(access_key)
        if rec is None:
            self._remember(access_key, None, None)
            return
        try:
            secret = self._unseal(rec)
        except SealError:  # sealed under another cluster secret: unusable, treat as unknown
            self._remember(access_key, None, None)
            return
        self._remember(access_key, Principal(access_key, False, dict(rec.grants)), secret)

    def secret_for(self, access_key: str) -> str | None:
        """The secret for SigV4 (sync): admin keys, else what ``prefetch`` cached."""
        if access_key in self._admins:
            return self._admins[access_key]
        entry = self._cache.get(access_key)
        return entry[2] if entry else None

    def principal_for(self, access_key: str) -> Principal | None:
        if access_key in self._admins:
            return Principal(access_key, admin=True)
        entry = self._cache.get(access_key)
        return entry[1] if entry else None

    def _remember(self, access_key: str, principal: Principal | None, secret: str | None) -> None:
        self._cache[access_key] = (time.monotonic() + self.ttl, principal, secret)
        self._cache.move_to_end(access_key)
        while len(self._cache) > CACHE_MAX:
            self._cache.popitem(last=False)

    def forget(self, access_key: str) -> None:
        self._cache.pop(access_key, None)

    # Management (admin API) ----------------------------------------------------

    async def create(self, name: str = "") -> tuple[KeyRecord, str]:
        """A new key; returns its record and the secret (shown once, stored sealed)."""
        access_key = "SHK" + random.token_hex(9).upper()
        secret = new_secret_key()
        sealed = seal(self._seal_key, secret.encode(), access_key.encode())
        rec = KeyRecord(access_key=access_key, hlc=self.catalog.stamp(),
                        sealed_secret=base64.b64encode(sealed).decode(), name=name,
                        created=time.time())
        await self.catalog.put(KEYS, [(key_key(access_key), rec.to_dict())])
        self.forget(access_key)
        return rec, secret

    async def get(self, access_key: str) -> KeyRecord:
        rec = await self._read(access_key)
        if rec is None:
            raise KeyError(access_key)
        return rec

    async def list(self) -> list[KeyRecord]:
        return [KeyRecord.from_dict(rec)
                async for _, rec in self.catalog.scan(KEYS, "k/", "k0")]

    async def delete(self, access_key: str) -> None:
        await self.get(access_key)
        tomb = {"access_key": access_key, "hlc": self.catalog.stamp(), "deleted": True,
                "v": SCHEMA}
        await self.catalog.put(KEYS, [(key_key(access_key), tomb)])
        self.forget(access_key)

    async def grant(self, access_key: str, bucket: str, level: str | None) -> KeyRecord:
        """Set (or with None remove) ``access_key``'s permission on ``bucket``."""
        rec = await self.get(access_key)
        if level is None:
            rec.grants.pop(bucket, None)
        else:
            rec.grants[bucket] = check_level(level)
        rec.hlc = self.catalog.stamp()
        await self.catalog.put(KEYS, [(key_key(access_key), rec.to_dict())])
        self.forget(access_key)
        return rec

    async def _read(self, access_key: str) -> KeyRecord | None:
        raw: dict[str, Any] | None = await self.catalog.get(KEYS, key_key(access_key))
        if raw is None or raw.get("deleted"):
            return None
        return KeyRecord.from_dict(raw)

    def _unseal(self, rec: KeyRecord) -> str:
        sealed = base64.b64decode(rec.sealed_secret)
        return unseal(self._seal_key, sealed, rec.access_key.encode()).decode()


def denied() -> S3Error:
    return S3Error("AccessDenied", "Access Denied")
