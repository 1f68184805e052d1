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

from cluster.httpserve import InPlaceBodyProtocol
from cluster.membership import Membership
from cluster.process import Secrets, start_serf, tune_gc, tune_malloc
from cluster.serfagent import split_hostport
from gateway.app import S3App, create_app
from gateway.vhost import parse_domains
from gateway.webendpoint import DEFAULT_DOMAIN, Listeners, WebsiteApp, serve_on_ports


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
    website_port: int | None = None  # a second listener serving buckets as websites
    website_domain: str = "localhost"
    domain: str = ""  # base domains for virtual-hosted-style requests, comma-separated


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
        "SHOAL_DOMAIN": opts.domain,
    })
    if opts.website_port:
        os.environ.update({"SHOAL_WEBSITE_PORT": str(opts.website_port),
                           "SHOAL_WEBSITE_DOMAIN": opts.website_domain})
    try:
        config = uvicorn.Config("gateway.server:app_from_env", factory=True, host=opts.host,
                                port=opts.port, workers=opts.workers, loop="uvloop",
                                http=InPlaceBodyProtocol, log_level="warning",
                                timeout_keep_alive=30, proxy_headers=False, access_log=False,
                                server_header=False)  # the app sends "Server: Shoal"
        ports = [opts.port] + ([opts.website_port] if opts.website_port else [])
        serve_on_ports(config, opts.host, ports)
    finally:
        agent.stop(leave=False)


def app_from_env() -> S3App | Listeners:
    tune_malloc()  # per worker process: each has its own heap
    secrets = Secrets.from_env()
    host, port = split_hostport(os.environ["SHOAL_SERF_RPC"])
    membership = Membership(host, port, secrets.rpc_token)
    membership.start()
    name = f"{os.environ['SHOAL_GATEWAY_NAME']}/{os.getpid()}"
    credentials = {os.environ["SHOAL_ACCESS_KEY"]: os.environ["SHOAL_SECRET_KEY"]}
    app = create_app(name, membership, secrets.cluster_secret.encode(), credentials,
                     os.environ.get("SHOAL_ADMIN_TOKEN") or None,
                     parse_domains(os.environ.get("SHOAL_DOMAIN")))
    tune_gc()
    website_port = int(os.environ.get("SHOAL_WEBSITE_PORT") or 0)
    if not website_port:
        return app
    website = WebsiteApp(app, os.environ.get("SHOAL_WEBSITE_DOMAIN", DEFAULT_DOMAIN))
    return Listeners(app, website, website_port)
