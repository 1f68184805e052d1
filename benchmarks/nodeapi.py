"""CPU per node API call, read from the node's own /proc counters.

    python -m benchmarks.nodeapi --data DIR [--node node-1] [--calls 2000] \
        [--concurrency 8] {health,meta,span,full,put}

Talks straight to one storage node of a running `shoal up --data DIR` (the cluster secret
comes from DIR/cluster.json) through the cluster's own NodeClient, so each figure is what
one gateway call costs the node, with nothing else in the way:

  health  GET /health                     the floor: routing, authentication, JSON
  meta    POST /meta/get of one key       a metadata point read
  span    GET /shards/{id}?spans=...      a 64 KiB range read of a stored shard
  full    GET /shards/{id}                a whole-shard read
  put     PUT /shards/{id} of 1 MiB       a synced shard write (new ids; not cleaned up)

It prints calls/s and the node's and this client's CPU in ms per call. Shard reads need
shards on the node: write some objects first (e.g. benchmarks.loadgen --only large --keep).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
import uuid
from pathlib import Path

import uvloop

from cluster.nodeauth import content_hash
from cluster.nodeclient import NodeClient
from cluster.process import tune_malloc

MiB = 1 << 20


def find_node(data: Path, name: str) -> tuple[int, str]:
    """(pid, API URL) of the `shoal node` process serving ``data/name``."""
    found = subprocess.run(["pgrep", "-f", f"shoal node --data {data / name} "],
                           capture_output=True, text=True).stdout.split()
    if not found:
        raise SystemExit(f"no running node {name} under {data}")
    argv = Path(f"/proc/{found[0]}/cmdline").read_text().split("\0")
    return int(found[0]), f"http://127.0.0.1:{argv[argv.index('--api-port') + 1]}"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(args: argparse.Namespace) -> None:
    pid, api = find_node(args.data, args.node)
    secret = json.loads((args.data / "cluster.json").read_text())["cluster_secret"]
    client = NodeClient(secret.encode())
    await client.start()
    ids = await client.list_shards(api, "", 5000)
    if args.mode in ("span", "full") and not ids:
        raise SystemExit(f"{args.node} stores no shards yet")
    payload = os.urandom(MiB)
    digest = content_hash(payload)

    async def call() -> None:
        if args.mode == "health":
            await client.health(api)
        elif args.mode == "meta":
            await client.meta_get(api, ["o/nodeapi/absent"])
        elif args.mode == "span":
            await client.get_shard(api, random.choice(ids), spans=[(0, 80), (1000, 66536)])
        elif args.mode == "full":
            await client.get_shard(api, random.choice(ids))
        else:
            await client.put_shard(api, f"nodeapi-{uuid.uuid4().hex}.0", payload, digest)

    left = args.calls

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await call()

    node0, mine0, t0 = cpu_seconds(pid), time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    wall = time.perf_counter() - t0
    node_ms = (cpu_seconds(pid) - node0) / args.calls * 1000
    mine_ms = (time.process_time() - mine0) / args.calls * 1000
    await client.close()
    print(f"{args.mode} c{args.concurrency}: {args.calls / wall:.0f} calls/s; node CPU "
          f"{node_ms:.3f} ms/call; client CPU {mine_ms:.3f} ms/call")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.nodeapi", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=("health", "meta", "span", "full", "put"))
    p.add_argument("--data", type=Path, required=True, help="the `shoal up --data` directory")
    p.add_argument("--node", default="node-1")
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=8)
    args = p.parse_args(argv)
    args.data = args.data.resolve()
    tune_malloc()  # the heap settings of a gateway, so the client side costs what it would
    uvloop.run(measure(args))  # the loop gateways and nodes use
    return 0


if __name__ == "__main__":
    sys.exit(main())
