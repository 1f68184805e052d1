"""Shoal beside peer stores: the same loadgen workloads, alternating, with ratios.

    python -m benchmarks.compare --peer ceph=http://127.0.0.1:7480@ACCESS:SECRET \
        [--peer swift=...] [--shoal http://127.0.0.1:9000@ACCESS:SECRET] \
        [--rounds 3] [--only small,large,range,list] [--wrk] [--quick] \
        [--checksum when_required]

Without ``--shoal`` it starts ``shoal up`` (6 nodes, 3 zones, EC 4+2, synced WAL) in a
temporary directory and stops it at the end. Peers are endpoints already running (the
peer scripts in ../shared/peers start them). Every round runs each workload once per
store, back to back, the store order reversed on every other round so neither always
goes first; a workload is one ``benchmarks.loadgen`` phase, so the figures, the client
CPU beside them and the errors mean what they mean there. The table gives each store's
median over the rounds (min-max beside it) and the ratio Shoal/peer, oriented so that
above 1.00 Shoal is faster (for listing times that is peer ms / Shoal ms).

Two cores: the stores all stay up, but only one is under load at any moment.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import loadgen

# (loadgen result name, field, unit, higher is better)
FIGURES = {
    "small": [("small-put", "ops_per_s", "ops/s", True), ("small-get", "ops_per_s", "ops/s", True)],
    "medium": [("medium-put", "mib_per_s", "MiB/s", True),
               ("medium-get", "mib_per_s", "MiB/s", True)],
    "large": [("large-put", "mib_per_s", "MiB/s", True), ("large-get", "mib_per_s", "MiB/s", True)],
    "range": [("range-get", "ops_per_s", "ops/s", True)],
    "list": [("list", "list_ms", "ms", False)],
    "wrk": [("wrk-get", "ops_per_s", "ops/s", True), ("wrk-put", "ops_per_s", "ops/s", True),
            ("wrk-range", "ops_per_s", "ops/s", True)],
}
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Store:
    name: str
    endpoint: str
    access_key: str
    secret_key: str
    figures: dict[str, list[float]] = field(default_factory=dict)


def parse_store(name: str, spec: str) -> Store:
    """``http://host:port@ACCESS:SECRET`` -> Store. The secret is after the last colon:
    Swift's access keys are ``account:user``; S3 secrets have no colon."""
    match = re.fullmatch(r"(https?://[^@]+)@(.+):([^:]+)", spec)
    if not match:
        raise argparse.ArgumentTypeError(f"{name}: expected URL@ACCESS:SECRET, got {spec!r}")
    return Store(name, *match.groups())


@contextlib.contextmanager
def shoal_up(port: int) -> Iterator[Store]:
    """A fresh `shoal up` in a temporary directory, stopped (SIGINT) on exit."""
    with tempfile.TemporaryDirectory(prefix="shoal-compare-") as tmp:
        shoal = ROOT / ".venv" / "bin" / "shoal"
        proc = subprocess.Popen([str(shoal if shoal.exists() else "shoal"), "up", "--data",
                                 f"{tmp}/data", "--port", str(port)],
                                stdout=subprocess.PIPE, text=True, start_new_session=True)
        try:
            lines = []
            assert proc.stdout is not None
            for line in proc.stdout:  # credentials come before "Press Ctrl-C"
                lines.append(line)
                if "Press Ctrl-C" in line:
                    break
            text = "".join(lines)
            access = re.search(r"access key:\s*(\S+)", text)
            secret = re.search(r"secret key:\s*(\S+)", text)
            if not (access and secret):
                raise RuntimeError(f"shoal up did not start:\n{text}")
            yield Store("shoal", f"http://127.0.0.1:{port}", access[1], secret[1])
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def run_workload(store: Store, workload: str, args: argparse.Namespace) -> None:
    argv = ["--endpoint", store.endpoint, "--access-key", store.access_key,
            "--secret-key", store.secret_key, "--only", workload, "--bucket", "compare"]
    if args.quick:
        argv.append("--quick")
    argv += ["--checksum", args.checksum]
    print(f"\n== {store.name}: {workload}", flush=True)
    report = asyncio.run(loadgen.run(loadgen.parse_args(argv)))  # the loop loadgen.main uses
    for result, key, _, _ in FIGURES[workload]:
        got = report["results"].get(result, {})
        if got.get("errors") or key not in got:
            print(f"   {store.name} {result}: failed, not counted", flush=True)
            continue
        store.figures.setdefault(result, []).append(float(got[key]))


def table(shoal: Store, peers: list[Store], workloads: list[str]) -> str:
    out = []
    head = f"{'figure':<12}{'unit':>6} {'Shoal':>22}"
    for p in peers:
        head += f" {p.name:>22} {'ratio':>6}"
    out.append(head)
    for workload in workloads:
        for result, _, unit, higher in FIGURES[workload]:
            row = f"{result:<12}{unit:>6} {cell(shoal.figures.get(result)):>22}"
            mine = shoal.figures.get(result)
            for p in peers:
                theirs = p.figures.get(result)
                ratio = "-"
                if mine and theirs:
                    a, b = statistics.median(mine), statistics.median(theirs)
                    ratio = f"{(a / b if higher else b / a):.2f}" if a and b else "-"
                row += f" {cell(theirs):>22} {ratio:>6}"
            out.append(row)
    return "\n".join(out)


def cell(values: list[float] | None) -> str:
    if not values:
        return "failed"
    med = statistics.median(values)
    return f"{med:.1f} ({min(values):.0f}-{max(values):.0f})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--peer", action="append", default=[], metavar="NAME=URL@ACCESS:SECRET",
                   help="a peer store (repeatable)")
    p.add_argument("--shoal", metavar="URL@ACCESS:SECRET",
                   help="a running Shoal; default: start `shoal up` for this run")
    p.add_argument("--port", type=int, default=9600, help="gateway port of the started Shoal")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--only", default="small,large,range,list",
                   help=f"comma-separated subset of {','.join(FIGURES)}")
    p.add_argument("--wrk", action="store_true", help="add the presigned-URL wrk workload")
    p.add_argument("--quick", action="store_true", help="loadgen's short phases")
    p.add_argument("--checksum", choices=("when_supported", "when_required"),
                   default="when_supported",
                   help="the client's checksums (loadgen --checksum): when_required "
                        "gives every store the same client work")
    args = p.parse_args(argv)
    workloads = args.only.split(",") + (["wrk"] if args.wrk else [])
    unknown = set(workloads) - set(FIGURES)
    if unknown:
        p.error(f"unknown workload(s) {sorted(unknown)}")
    peers = [parse_store(*spec.split("=", 1)) for spec in args.peer]
    with contextlib.ExitStack() as stack:
        shoal = (parse_store("shoal", args.shoal) if args.shoal
                 else stack.enter_context(shoal_up(args.port)))
        stores = [shoal, *peers]
        started = time.monotonic()
        for round_no in range(args.rounds):
            order = stores if round_no % 2 == 0 else stores[::-1]
            for workload in workloads:
                for store in order:
                    run_workload(store, workload, args)
        print(f"\n{args.rounds} rounds in {time.monotonic() - started:.0f} s on "
              f"{os.cpu_count()} cores; median (min-max) per store; ratio = Shoal/peer "
              "speed (above 1.00: Shoal faster)\n")
        print(table(shoal, peers, workloads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
