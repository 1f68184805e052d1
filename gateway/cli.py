"""The `shoal` command: `up` (a local cluster), `node` and `gateway` (one process each),
`bucket public` (publish a bucket through the S3 API), `rebalance` and `node drain ID`
(gateway/elasticcli.py), and the admin commands of gateway/admincli.py.

Every flag of `node` and `gateway` can also come from the environment as
SHOAL_<FLAG> (e.g. --serf-bind → SHOAL_SERF_BIND), which is how containers set them.
Secrets come from the environment only (SHOAL_CLUSTER_SECRET, SHOAL_GOSSIP_KEY,
SHOAL_RPC_TOKEN), never from flags, so they never show in `ps`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from gateway import admincli, bucketcli, elasticcli


def _env(flag: str, default: str | None = None) -> str | None:
    return os.environ.get("SHOAL_" + flag.upper().replace("-", "_"), default)


def _add(p: argparse.ArgumentParser, flag: str, default: str | None = None, **kw: object) -> None:
    p.add_argument(f"--{flag}", default=_env(flag, default), **kw)  # type: ignore[arg-type]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shoal", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run a local cluster on loopback")
    up.add_argument("--nodes", type=int, default=6)
    up.add_argument("--zones", type=int, default=3)
    up.add_argument("--data", type=Path, default=Path(".shoal-data"))
    up.add_argument("--port", type=int, default=9000)
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--access-key")
    up.add_argument("--secret-key")
    up.add_argument("--workers", type=int, default=1)
    up.add_argument("--website-port", type=int, nargs="?", const=9080,
                    help="also serve buckets as static websites on this port (9080)")
    up.add_argument("--domain", default=_env("domain", ""),
                    help="base domain(s) for virtual-hosted-style buckets (env SHOAL_DOMAIN)")

    node = sub.add_parser("node", help="run one storage node (`shoal node drain ID`: move "
                          "everything off a node, then it leaves)")
    _add(node, "data", "/data")
    _add(node, "name")
    _add(node, "zone", "default")
    _add(node, "api-host", "0.0.0.0")
    _add(node, "api-port", "9100")
    _add(node, "advertise-api")
    _add(node, "serf-bind", "0.0.0.0:7946")
    _add(node, "serf-rpc", "127.0.0.1:7373")
    _add(node, "join", "")
    _add(node, "capacity")

    gw = sub.add_parser("gateway", help="run one S3 gateway")
    _add(gw, "host", "0.0.0.0")
    _add(gw, "port", "9000")
    _add(gw, "data", "/data")
    _add(gw, "name")
    _add(gw, "zone", "default")
    _add(gw, "serf-bind", "0.0.0.0:7946")
    _add(gw, "serf-rpc", "127.0.0.1:7373")
    _add(gw, "join", "")
    _add(gw, "workers", "1")
    _add(gw, "access-key")
    _add(gw, "secret-key")
    _add(gw, "website-port")
    _add(gw, "website-domain", "localhost")
    _add(gw, "domain", "", help="base domain(s) for virtual-hosted-style buckets, "
         "comma-separated (bucket.DOMAIN/key beside DOMAIN/bucket/key)")
    admincli.add_parsers(sub)
    elasticcli.add_parsers(sub)
    return parser


def _joins(value: str | None) -> list[str]:
    return [j.strip() for j in (value or "").split(",") if j.strip()]


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] == ["node", "drain"]:  # an admin command beside `shoal node`'s own flags
        raise SystemExit(elasticcli.run_drain(argv[2:]))
    args = build_parser().parse_args(argv)
    if args.command == "rebalance":
        raise SystemExit(elasticcli.run_rebalance(args))
    if args.command == "bucket" and args.action == "public":
        bucketcli.run(args)  # through the S3 API, with the cluster's credentials
        return
    if args.command in admincli.COMMANDS:
        raise SystemExit(admincli.run(args))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # Imported here: each process imports only the side it runs (start-up is CPU-bound
    # when `shoal up` starts every process at once).
    if args.command == "up":
        from gateway.localcluster import UpOptions, run_up

        run_up(UpOptions(args.nodes, args.zones, args.data.resolve(), args.port, args.host,
                         args.access_key, args.secret_key, args.workers, args.website_port,
                         args.domain or ""))
    elif args.command == "node":
        from cluster.nodemain import NodeOptions, run_node

        run_node(NodeOptions(
            data=Path(args.data).resolve(), name=args.name, zone=args.zone,
            api_host=args.api_host, api_port=int(args.api_port),
            advertise_api=args.advertise_api, serf_bind=args.serf_bind,
            serf_rpc=args.serf_rpc, join=_joins(args.join),
            capacity=int(args.capacity) if args.capacity else None))
    else:
        from gateway.server import GatewayOptions, run_gateway

        run_gateway(GatewayOptions(
            host=args.host, port=int(args.port), data=Path(args.data).resolve(),
            name=args.name, zone=args.zone, serf_bind=args.serf_bind, serf_rpc=args.serf_rpc,
            join=_joins(args.join), workers=int(args.workers),
            access_key=args.access_key or "", secret_key=args.secret_key or "",
            website_port=int(args.website_port) if args.website_port else None,
            website_domain=args.website_domain, domain=args.domain or ""))


if __name__ == "__main__":
    main()
