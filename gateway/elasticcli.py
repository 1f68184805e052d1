"""`shoal rebalance` and `shoal node drain ID`: moving data for a changed cluster, with
progress on the terminal.

* ``shoal rebalance`` starts a rebalance pass on every node (cluster/repair.py: shards
  whose node fell out of a block's placement are copied to the node placement picks now)
  and shows progress until every node has finished its pass.
* ``shoal node drain ID`` asks the admin API to drain a node (refused, exit 1, when the
  rest of the cluster cannot hold its data) and shows progress until it has left.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from gateway.admincli import common_parser, progress_bar
from gateway.adminclient import AdminCallError, AdminClient, locate

POLL = 1.0
FAILED_FOR = 60.0  # seconds a draining node may look failed before the CLI gives up


def add_parsers(sub: Any) -> None:
    sub.add_parser("rebalance", parents=[common_parser()],
                   help="move old data onto the nodes placement picks now (after joins)")


def rebalance(client: AdminClient, as_json: bool) -> int:
    before = {name: r.get("rebalance", {}).get("passes", 0)
              for name, r in client.repair()["nodes"].items()}
    started = client.run("rebalance")["started"]
    while True:
        report = client.repair()
        nodes = report["nodes"]
        done = [n for n in started if nodes.get(n, {}).get("rebalance", {}).get("passes", 0)
                > before.get(n, 0) and not nodes[n]["rebalance"].get("running")]
        moved = report["rebalance"]
        if not as_json:
            print(f"rebalance {progress_bar(len(done), len(started))} {len(done)}/"
                  f"{len(started)} nodes done, {moved['slots_moved']} shards moved "
                  f"({moved['bytes_moved'] / 1e6:.1f} MB read+written)", flush=True)
        if len(done) == len(started):
            if as_json:
                print(json.dumps({"nodes": started, **moved}, indent=2))
            return 0
        time.sleep(POLL)


def drain(client: AdminClient, node: str, wait: bool, as_json: bool) -> int:
    answer = client.drain(node)
    if not as_json:
        print(f"draining {node}: no new data goes to it; its shards and metadata are "
              "moving to the other nodes", flush=True)
    failed_since: float | None = None
    while wait and answer.get("state") != "left":
        # A node that just finished may look failed while its leave spreads through
        # gossip (a peer probing it during the leave marks it failed, then sees the
        # leave): only a failure that lasts FAILED_FOR seconds ends the wait.
        if answer.get("state") == "failed":
            failed_since = failed_since or time.monotonic()
            if time.monotonic() - failed_since > FAILED_FOR:
                break
        else:
            failed_since = None
        time.sleep(POLL)
        answer = client.drain_progress(node)
        first, left = answer.get("slots_first"), answer.get("slots_left")
        if not as_json and first is not None and left is not None:
            print(f"drain {progress_bar(first - left, first)} {first - left}/{first} shards "
                  f"moved ({answer.get('state')})", flush=True)
    if as_json:
        print(json.dumps(answer, indent=2))
    elif answer.get("state") == "left":
        print(f"{node} is drained and has left the cluster")
    elif wait:
        print(f"{node}: drain stopped, node is {answer.get('state')}", file=sys.stderr)
        return 1
    return 0


def drain_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="shoal node drain", parents=[common_parser()],
                                description="move every shard and metadata partition off "
                                "a node, then let it leave the cluster")
    p.add_argument("node", help="the node's name (see `shoal status`)")
    p.add_argument("--no-wait", action="store_true", help="start the drain and return")
    return p


def run_drain(argv: list[str]) -> int:
    args = drain_parser().parse_args(argv)
    return _guarded("node drain", args, lambda c: drain(c, args.node, not args.no_wait,
                                                          args.json))


def run_rebalance(args: argparse.Namespace) -> int:
    return _guarded("rebalance", args, lambda c: rebalance(c, args.json))


def _guarded(command: str, args: Any, body: Any) -> int:
    try:
        return body(AdminClient(*locate(args.data, args.endpoint, args.token)))
    except AdminCallError as err:
        print(f"shoal {command}: {err.message}", file=sys.stderr)
        return 1
