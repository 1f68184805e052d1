"""What a gateway needs to decide who may do what and to encrypt: built once per process.

* ``keys`` -- access keys stored in the cluster, plus the bootstrap admin credentials;
* ``sse_master`` -- the SSE-S3 master key that wraps every object's data key. It is
  derived from the cluster secret (HKDF, purpose "sse-s3 master"), so it lives only in
  the memory of gateways; storage nodes keep wrapped data keys and ciphertext only;
* ``admin_token`` -- the bearer token of the admin API (SHOAL_ADMIN_TOKEN), or None when
  the admin API is off.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.catalog import Catalog
from gateway.keys import KeyStore
from gateway.sealing import derive_key


@dataclass
class Security:
    keys: KeyStore
    sse_master: bytes
    admin_token: str | None

    @classmethod
    def build(cls, catalog: Catalog, cluster_secret: bytes, admins: dict[str, str],
              admin_token: str | None) -> Security:
        return cls(KeyStore(catalog, cluster_secret, admins),
                   derive_key(cluster_secret, "sse-s3 master"), admin_token or None)
