"""`shoal key …`, `shoal bucket …`, `shoal status`, `shoal run`: the admin API from the
command line.

Each command is one call of gateway/adminclient.py; the answer is printed for people
(``--json`` prints it as the API gave it). Exit status 1 and the API's message on refusal.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from gateway import bucketcli
from gateway.adminclient import TASKS, AdminCallError, AdminClient, locate

COMMANDS = ("key", "bucket", "status", "run")


def common_parser() -> argparse.ArgumentParser:
    """Options every admin command takes: where the cluster is, and how to print."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data", type=Path,
                        default=Path(os.environ.get("SHOAL_DATA", ".shoal-data")),
                        help="data directory of a `shoal up` cluster (cluster.json)")
    common.add_argument("--endpoint", help="gateway URL (or SHOAL_ENDPOINT)")
    common.add_argument("--token", help="admin token (prefer SHOAL_ADMIN_TOKEN: flags show "
                        "in ps)")
    common.add_argument("--json", action="store_true", help="print the raw JSON answer")
    return common


def add_parsers(sub: Any) -> None:
    common = common_parser()

    key = sub.add_parser("key", help="manage access keys").add_subparsers(
        dest="action", required=True)
    create = key.add_parser("create", parents=[common], help="a new access key")
    create.add_argument("--name", default="")
    key.add_parser("list", parents=[common], help="all access keys and their buckets")
    delete = key.add_parser("delete", parents=[common], help="delete an access key")
    delete.add_argument("access_key")
    allow = key.add_parser("allow", parents=[common], help="grant a key a permission")
    allow.add_argument("access_key")
    allow.add_argument("bucket")
    allow.add_argument("permission", choices=["read", "write", "owner", "none"])

    bucket = sub.add_parser("bucket", help="buckets with storage policies").add_subparsers(
        dest="action", required=True)
    make = bucket.add_parser("create", parents=[common], help="a bucket with a policy")
    make.add_argument("name")
    shape = make.add_mutually_exclusive_group()
    shape.add_argument("--ec", metavar="K+M", help="erasure coding, e.g. 4+2")
    shape.add_argument("--replicas", type=int, metavar="N", help="N full copies")
    make.add_argument("--zones", type=int, default=1,
                      help="spread over at least Z zones and survive losing any one zone")
    make.add_argument("--encrypt", action="store_true", help="encrypt at rest (SSE-S3)")
    info = bucket.add_parser("info", parents=[common], help="a bucket and its policy")
    info.add_argument("name")
    bucketcli.add_public(bucket)

    status = sub.add_parser("status", parents=[common],
                            help="members, zones, capacity, problems and repair progress")
    status.add_argument("--watch", action="store_true", help="repeat while repair runs")
    run_task = sub.add_parser("run", parents=[common],
                              help="start a pass of a background task on every node")
    run_task.add_argument("task", choices=TASKS)


def run(args: argparse.Namespace) -> int:
    try:
        client = AdminClient(*locate(args.data, args.endpoint, args.token))
        while True:
            answer = _call(client, args)
            print(json.dumps(answer, indent=2) if args.json else _words(args, answer),
                  flush=True)
            if not (args.command == "status" and args.watch
                    and answer["repair"]["progress"]["running"]):
                return 0
            time.sleep(1.0)
    except AdminCallError as err:
        print(f"shoal {args.command}: {err.message}", file=sys.stderr)
        return 1


def _call(client: AdminClient, args: argparse.Namespace) -> Any:
    action = getattr(args, "action", None)
    if args.command == "status":
        return {**client.status(), "repair": client.repair()}
    if args.command == "run":
        return client.run(args.task)
    if args.command == "key":
        if action == "create":
            return client.create_key(args.name)
        if action == "list":
            return client.list_keys()
        if action == "delete":
            client.delete_key(args.access_key)
            return {"deleted": args.access_key}
        return client.allow(args.access_key, args.bucket, args.permission)
    if action == "create":
        policy = args.ec if args.ec else (f"replica:{args.replicas}" if args.replicas else None)
        return client.create_bucket(args.name, policy, args.zones, args.encrypt)
    return client.bucket_info(args.name)


def _words(args: argparse.Namespace, answer: Any) -> str:
    action = getattr(args, "action", None)
    if args.command == "status":
        return _status_words(answer) + "\n" + _repair_words(answer["repair"])
    if args.command == "run":
        return (f"{args.task} started on {len(answer['started'])} nodes: "
                f"{', '.join(answer['started'])}")
    if args.command == "key" and action == "create":
        return (f"access key: {answer['access_key']}\nsecret key: {answer['secret_key']}\n"
                "(the secret is shown only now)")
    if args.command == "key" and action == "list":
        lines = [f"{k['access_key']}  {k['name'] or '-'}  " + (", ".join(
            f"{b}:{p}" for b, p in k["buckets"].items()) or "no buckets") for k in answer]
        return "\n".join(lines) or "no access keys"
    if args.command == "bucket":
        p = answer["policy"]
        return (f"bucket {answer['name']}: {p['text']}, zones {p['zones']}, "
                f"encrypt {'on' if p['encrypt'] else 'off'}")
    return json.dumps(answer)


def _status_words(s: dict[str, Any]) -> str:
    lines = [f"Shoal: {'healthy' if s['healthy'] else 'NEEDS ATTENTION'}; "
             f"default policy {s['default_policy']}"]
    for zone, counts in s["zones"].items():
        lines.append(f"  zone {zone}: {counts['alive']} alive, {counts['down']} down")
    for n in s["nodes"]:
        disk = ("" if n.get("disk_free") is None else
                f", {n['used_bytes'] / 2**30:,.1f} GiB used, {n['disk_free'] / 2**30:,.0f} GiB "
                f"free on disk")
        lines.append(f"  {n['name']:<12} {n['status']:<8} zone {n['zone']:<8} "
                     f"capacity {n['capacity'] / 2**30:,.0f} GiB{disk}"
                     + ("  (draining)" if n["draining"] else ""))
    cap = s["capacity"]
    lines.append(f"  capacity: {cap['alive_bytes'] / 2**30:,.0f} GiB live of "
                 f"{cap['total_bytes'] / 2**30:,.0f} GiB; "
                 f"{cap.get('used_bytes', 0) / 2**30:,.1f} GiB of shards stored")
    gw = s["gateway"]
    lines.append(f"  gateway {gw['name']}: {gw['writes_in_flight_bytes'] / 2**20:,.0f} of "
                 f"{gw['write_budget_bytes'] / 2**20:,.0f} MiB of blocks being written, "
                 f"{gw['writes_waiting']} uploads waiting for room; "
                 f"{gw['read_ahead_bytes'] / 2**20:,.0f} of "
                 f"{gw['read_ahead_budget_bytes'] / 2**20:,.0f} MiB read ahead")
    lines += [f"  problem: {p}" for p in s["problems"]]
    return "\n".join(lines)


BAR = 30


def progress_bar(done: int, total: int) -> str:
    filled = BAR if total == 0 else BAR * done // total
    pct = 100 if total == 0 else 100 * done // total
    return f"[{'#' * filled}{'.' * (BAR - filled)}] {pct:3d}%"


def _repair_words(report: dict) -> str:
    """Words for an operator: one line of repair progress, then one line per node."""
    p = report["progress"]
    state = "running" if p["running"] else "idle"
    lines = [f"repair {progress_bar(p['partitions_done'], p['partitions'])} "
             f"{p['partitions_done']}/{p['partitions']} partitions ({state}), "
             f"{p['slots_repaired']} shards rebuilt, {p['blocks_waiting']} blocks waiting "
             f"for a failed node"]
    for name, r in sorted(report["nodes"].items()):
        if "error" in r:
            lines.append(f"  {name}: unreachable ({r['error']})")
            continue
        rep, scrub, gc, sync = r["repair"], r["scrub"], r["gc"], r["sync"]
        lines.append(
            f"  {name}: repair passes {rep.get('passes', 0)}, "
            f"{rep.get('partitions_done', 0)}/{rep.get('partitions', 0)} partitions, "
            f"{rep.get('bytes_written_total', 0) / 1e6:.1f} MB moved; "
            f"scrub {scrub.get('shards_checked', 0)} shards, {scrub.get('rotten_total', 0)} "
            f"rotten; gc {gc.get('deleted_total', 0)} deleted, {gc.get('candidates', 0)} "
            f"pending; sync pushed {sync.get('pushed', 0)} pulled {sync.get('pulled', 0)}")
    return "\n".join(lines)
