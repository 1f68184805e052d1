"""The one client of the admin API, shared by the `shoal` CLI and the tests.

Synchronous (urllib): an operator's command makes one call at a time. Where to connect
comes from ``locate``: explicit endpoint/token, else the environment (SHOAL_ENDPOINT,
SHOAL_ADMIN_TOKEN), else a `shoal up` data directory (cluster.json holds the token,
runtime.json the endpoint of the running cluster).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

TASKS = ("repair", "rebalance", "scrub", "gc", "sync")  # what `shoal run` may start

PREFIX = "/_shoal/admin"


class AdminCallError(Exception):
    """The admin API refused a call; ``code`` and ``message`` are its answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message


def locate(data: Path | None, endpoint: str | None = None, token: str | None = None
           ) -> tuple[str, str]:
    """(endpoint, token) from the arguments, the environment, or a data directory."""
    endpoint = endpoint or os.environ.get("SHOAL_ENDPOINT")
    token = token or os.environ.get("SHOAL_ADMIN_TOKEN")
    if data is not None and (endpoint is None or token is None):
        if token is None and (data / "cluster.json").exists():
            token = json.loads((data / "cluster.json").read_text()).get("admin_token")
        if endpoint is None and (data / "runtime.json").exists():
            endpoint = json.loads((data / "runtime.json").read_text()).get("endpoint")
    if not endpoint or not token:
        raise AdminCallError(0, "NoCluster", "cannot find the cluster: give --data DIR of a "
                             "running `shoal up`, or --endpoint and SHOAL_ADMIN_TOKEN")
    return endpoint.rstrip("/"), token


class AdminClient:
    def __init__(self, endpoint: str, token: str, timeout: float = 30.0) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._token = token
        self.timeout = timeout

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        import urllib.error  # here: urllib.request pulls in ssl, which every `shoal`
        import urllib.request  # process would otherwise import at start-up

        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.endpoint + PREFIX + path, data=data, method=method,
            headers={"authorization": f"Bearer {self._token}",
                     "content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as err:
            try:
                answer = json.load(err)
            except ValueError:
                answer = {}
            raise AdminCallError(err.code, answer.get("error", "HTTPError"),
                                 answer.get("message", str(err))) from None
        except OSError as err:
            raise AdminCallError(0, "Unreachable", f"{self.endpoint}: {err}") from None

    # Keys --------------------------------------------------------------------

    def create_key(self, name: str = "") -> dict[str, Any]:
        return self.call("POST", "/keys", {"name": name})

    def list_keys(self) -> list[dict[str, Any]]:
        return self.call("GET", "/keys")["keys"]

    def delete_key(self, access_key: str) -> None:
        self.call("DELETE", f"/keys/{quote(access_key, safe='')}")

    def allow(self, access_key: str, bucket: str, permission: str) -> dict[str, Any]:
        """Grant read|write|owner on ``bucket`` (``none`` revokes)."""
        return self.call("PUT", f"/keys/{quote(access_key, safe='')}/buckets/"
                                f"{quote(bucket, safe='')}", {"permission": permission})

    # Buckets and status ------------------------------------------------------

    def create_bucket(self, name: str, policy: str | None = None, zones: int = 1,
                      encrypt: bool = False) -> dict[str, Any]:
        return self.call("POST", "/buckets", {"name": name, "policy": policy, "zones": zones,
                                              "encrypt": encrypt})

    def bucket_info(self, name: str) -> dict[str, Any]:
        return self.call("GET", f"/buckets/{quote(name, safe='')}")

    def status(self) -> dict[str, Any]:
        return self.call("GET", "/status")

    def repair(self) -> dict[str, Any]:
        """Every node's background work and the cluster's repair progress."""
        return self.call("GET", "/repair")

    def run(self, task: str) -> dict[str, Any]:
        """Start a pass of ``task`` (repair, rebalance, scrub, gc, sync) on every live node."""
        return self.call("POST", f"/run?task={task}")

    def drain(self, node: str) -> dict[str, Any]:
        """Begin draining ``node`` (AdminCallError 409 DrainRefused when it cannot be)."""
        return self.call("POST", f"/nodes/{quote(node, safe='')}/drain")

    def drain_progress(self, node: str) -> dict[str, Any]:
        return self.call("GET", f"/nodes/{quote(node, safe='')}/drain")

    def object_health(self, bucket: str, key: str) -> dict[str, Any]:
        return self.call("GET", f"/objects/{quote(bucket, safe='')}/{quote(key)}")
