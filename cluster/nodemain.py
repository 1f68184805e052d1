"""`shoal node`: one storage node process — RocksDB, the node API, and its serf agent.

The HTTP server starts first and the serf agent second, so by the time gossip
announces the node, its API answers. Then the node reads membership from its agent and
starts its background work (cluster/nodework.py: repair, scrub, gc, metadata sync). The node's name is kept in its data directory:
object records name the nodes holding shards, so a restarted node must come back
under the same name.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from dataclasses import dataclass
from pathlib import Path

import uvicorn
import uvloop

from cluster import rocksdbcrc
from cluster.drain import MARKER as DRAIN_MARKER
from cluster.httpserve import InPlaceBodyProtocol
from cluster.membership import Membership
from cluster.nodeapp import create_node_app
from cluster.nodework import NodeWork, WorkConfig
from cluster.process import Secrets, disk_capacity, own_address, start_serf, tune_gc, tune_malloc
from cluster.serfagent import SerfAgent, split_hostport
from cluster.store import NodeStore

log = logging.getLogger("shoal.node")


@dataclass
class NodeOptions:
    data: Path
    name: str | None
    zone: str
    api_host: str
    api_port: int
    advertise_api: str | None
    serf_bind: str
    serf_rpc: str
    join: list[str]
    capacity: int | None


def node_identity(data: Path, requested: str | None, zone: str) -> tuple[str, str]:
    """(name, zone): remembered across restarts; a new node takes the given or host name."""
    ident = data / "node.json"
    if ident.exists():
        saved = json.loads(ident.read_text())
        if requested and requested != saved["name"]:
            raise SystemExit(f"shoal node: {data} belongs to node {saved['name']!r}")
        return saved["name"], saved.get("zone", zone)
    name = requested or socket.gethostname()
    ident.write_text(json.dumps({"name": name, "zone": zone}))
    return name, zone


def run_node(opts: NodeOptions) -> None:
    tune_malloc()
    secrets = Secrets.from_env()
    opts.data.mkdir(parents=True, exist_ok=True)
    name, zone = node_identity(opts.data, opts.name, opts.zone)
    api = opts.advertise_api or f"http://{_advertised_host(opts.api_host)}:{opts.api_port}"
    store = NodeStore(opts.data / "db")
    log.info("RocksDB CRC32C: %s", rocksdbcrc.status())
    work = NodeWork(name, store, secrets.cluster_secret.encode(), WorkConfig.from_env(),
                    opts.data)
    app = create_node_app(store, secrets.cluster_secret.encode(), name, zone, background=work)
    config = uvicorn.Config(app, host=opts.api_host, port=opts.api_port, loop="uvloop",
                            http=InPlaceBodyProtocol, log_level="warning",
                            timeout_keep_alive=30, proxy_headers=False, access_log=False,
                            server_header=False)
    server = uvicorn.Server(config)
    tune_gc()
    tags = {"role": "node", "api": api, "zone": zone,
            "capacity": str(opts.capacity or disk_capacity(opts.data))}
    if (opts.data / DRAIN_MARKER).exists():
        tags["drain"] = "1"  # a drain survives a restart: never take new data again
    rpc_host, rpc_port = split_hostport(opts.serf_rpc)
    membership = Membership(rpc_host, rpc_port, secrets.rpc_token)
    # uvicorn's loop="uvloop" only applies when uvicorn owns the loop; here we do.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_serve(server, lambda: start_serf(
            name, opts.data, opts.serf_bind, opts.serf_rpc, opts.join, tags, secrets),
            work, membership))


def _advertised_host(host: str) -> str:
    return own_address() if host in ("0.0.0.0", "") else host


async def _serve(server: uvicorn.Server, start_agent: object, work: NodeWork,
                 membership: Membership) -> None:
    agent: SerfAgent | None = None
    working = False
    leave = False
    task = asyncio.ensure_future(server.serve())
    while not server.started and not task.done():
        await asyncio.sleep(0.02)
    try:
        if server.started:
            # On this (main) thread: the agent's PR_SET_PDEATHSIG fires when the thread
            # that spawned it exits, so a worker thread would orphan it or kill it early.
            agent = start_agent()  # type: ignore[operator]
            log.info("node serving; serf agent pid %s", agent.pid)
            await asyncio.to_thread(membership.start)

            async def set_tags(tags: dict[str, str]) -> None:
                await asyncio.to_thread(agent.set_tags, tags)

            def drained() -> None:
                nonlocal leave
                leave = True  # a graceful serf leave: peers see "left" at once
                server.should_exit = True

            work.attach(membership, set_tags, drained)
            await work.start()
            working = True
        await task
    finally:
        if working:
            await work.stop()
            membership.stop()
        if agent is not None:
            agent.stop(leave=leave)
