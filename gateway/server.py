"""`shoal gateway`: the S3 gateway process — its serf agent, then uvicorn workers.

The process starts one serf agent; each uvicorn worker builds its own app from the
environment (``app_from_env``) with its own membership view on that agent's RPC.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from cluster.membership import Membership
from cluster.process import Secrets, start_serf
from cluster.serfagent import split_hostport
from gateway.app import S3App, create_app


@dataclass
class GatewayOptions:
    host: str
    port: int
    data: Path
    name: str | None
    zone: str
    serf_bind: str
    serf_rpc: str
    join: list[str]
    workers: int
    access_key: str
    secret_key: str


def run_gateway(opts: GatewayOptions) -> None:
    secrets = Secrets.from_env()
    if not opts.access_key or not opts.secret_key:
        raise SystemExit("shoal gateway: set SHOAL_ACCESS_KEY and SHOAL_SECRET_KEY")
    name = opts.name or f"gw-{socket.gethostname()}-{opts.port}"
    opts.data.mkdir(parents=True, exist_ok=True)
    tags = {"role": "gateway", "api": f"http://{opts.host}:{opts.port}", "zone": opts.zone}
    agent = start_serf(name, opts.data, opts.serf_bind, opts.serf_rpc, opts.join, tags, secrets)
    os.environ.update({
        "SHOAL_GATEWAY_NAME": name, "SHOAL_SERF_RPC": opts.serf_rpc,
        "SHOAL_ACCESS_KEY": opts.access_key, "SHOAL_SECRET_KEY": opts.secret_key,
    })
    try:
        uvicorn.run("gateway.server:app_from_env", factory=True, host=opts.host,
                    port=opts.port, workers=opts.workers, loop="uvloop", http="httptools",
                    log_level="warning", timeout_keep_alive=30)
    finally:
        agent.stop(leave=False)


def app_from_env() -> S3App:
    secrets = Secrets.from_env()
    host, port = split_hostport(os.environ["SHOAL_SERF_RPC"])
    membership = Membership(host, port, secrets.rpc_token)
    membership.start()
    name = f"{os.environ['SHOAL_GATEWAY_NAME']}/{os.getpid()}"
    credentials = {os.environ["SHOAL_ACCESS_KEY"]: os.environ["SHOAL_SECRET_KEY"]}
    return create_app(name, membership, secrets.cluster_secret.encode(), credentials,
                      os.environ.get("SHOAL_ADMIN_TOKEN") or None)
