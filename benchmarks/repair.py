"""Repair throughput, and what it leaves for foreground traffic.

    .venv/bin/python -m benchmarks.repair [--objects 40] [--size-mib 8] [--rate 0]

Starts `shoal up` (7 nodes in 3 zones, so after one loss k+m = 6 distinct nodes remain
for 4+2) in a temporary directory, fills a bucket,
measures foreground PUT+GET throughput (one client thread, 1 MiB objects) for a
baseline, SIGKILLs one node and keeps the foreground running until every object is
back at full redundancy (admin shard-health report). Prints JSON: the bytes repair
read and wrote, the window from the repair deadline to full redundancy, repair MB/s
over that window, and foreground MB/s before and during repair. ``--rate`` is
SHOAL_REPAIR_RATE in MB/s (0: unpaced).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path

from tests.harness import ShoalCluster, http

MiB = 1024 * 1024
BUCKET = "bench-repair"
DEADLINE = 3.0


class Foreground(threading.Thread):
    """PUT then GET 1 MiB objects in a loop; counts bytes moved."""

    def __init__(self, cluster: ShoalCluster) -> None:
        super().__init__(daemon=True)
        self.s3 = cluster.client()
        self.bytes = 0
        self.errors = 0
        self.stop = threading.Event()

    def run(self) -> None:
        body, n = os.urandom(MiB), 0
        while not self.stop.is_set():
            n += 1
            try:
                self.s3.put_object(Bucket=BUCKET, Key=f"fg/{n}", Body=body)
                self.bytes += len(self.s3.get_object(Bucket=BUCKET, Key=f"fg/{n}")["Body"].read())
                self.bytes += len(body)
            except Exception:  # a refused request is counted, not fatal, in a benchmark
                self.errors += 1

    def rate(self, seconds: float) -> float:
        """Foreground MB/s over the next ``seconds``."""
        start = self.bytes
        time.sleep(seconds)
        return (self.bytes - start) / seconds / 1e6


def admin(cluster: ShoalCluster, path: str) -> dict:
    token = json.loads((cluster.data / "cluster.json").read_text())["admin_token"]
    status, _, body = http("GET", cluster.endpoint + "/_shoal/admin/" + path,
                           headers={"Authorization": f"Bearer {token}"})
    if status != 200:
        raise RuntimeError(f"admin {path}: {status} {body[:200]!r}")
    return json.loads(body)


def repaired_bytes(cluster: ShoalCluster) -> int:
    nodes = admin(cluster, "repair")["nodes"].values()
    return sum(r.get("repair", {}).get("bytes_written_total", 0) for r in nodes)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--objects", type=int, default=40)
    p.add_argument("--size-mib", type=int, default=8)
    p.add_argument("--rate", type=float, default=0.0, help="SHOAL_REPAIR_RATE, MB/s")
    args = p.parse_args()
    os.environ.update({"SHOAL_REPAIR_DEADLINE": str(DEADLINE), "SHOAL_REPAIR_INTERVAL": "2",
                       "SHOAL_REPAIR_RATE": str(args.rate)})
    with tempfile.TemporaryDirectory(prefix="shoal-bench-repair-") as tmp:
        cluster = ShoalCluster(Path(tmp) / "data", nodes=7, zones=3)
        cluster.start()
        try:
            print(json.dumps(run(cluster, args), indent=2))
        finally:
            cluster.stop()


def run(cluster: ShoalCluster, args: argparse.Namespace) -> dict:
    s3 = cluster.client()
    s3.create_bucket(Bucket=BUCKET)
    keys = [f"obj/{i}" for i in range(args.objects)]
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=os.urandom(args.size_mib * MiB))
    fg = Foreground(cluster)
    fg.start()
    baseline = fg.rate(10)
    before = repaired_bytes(cluster)
    victim = "node-7"
    killed = time.monotonic()
    cluster.kill_node(victim)
    during_start, fg_start = time.monotonic(), fg.bytes
    pending, first_repair = list(keys), None
    while pending:
        time.sleep(1)
        if first_repair is None and repaired_bytes(cluster) > before:
            first_repair = time.monotonic()
        pending = [k for k in pending if not admin(cluster, f"objects/{BUCKET}/{k}")["full"]]
        if time.monotonic() - killed > 600:
            raise RuntimeError(f"{len(pending)} objects still not full after 10 minutes")
    full_at = time.monotonic()
    during = (fg.bytes - fg_start) / (full_at - during_start) / 1e6
    fg.stop.set()
    fg.join(30)
    moved = repaired_bytes(cluster) - before
    # Repair cannot start before the deadline, and gossip needs seconds to mark the
    # node failed: the window counted is from the deadline after the kill.
    window = full_at - killed - DEADLINE
    return {
        "cores": os.cpu_count(), "objects": args.objects, "object_MiB": args.size_mib,
        "stored_MB": round(args.objects * args.size_mib * MiB / 1e6, 1),
        "repair_rate_limit_MBps": args.rate or "unpaced",
        "repair_bytes_read_and_written_MB": round(moved / 1e6, 1),
        "kill_to_full_s": round(full_at - killed, 1),
        "repair_MBps_over_window": round(moved / window / 1e6, 1),
        "first_repair_bytes_to_full_s": round(full_at - (first_repair or killed), 1),
        "repair_MBps_while_active": round(moved / (full_at - (first_repair or killed)) / 1e6,
                                          1),
        "foreground_MBps_before": round(baseline, 1),
        "foreground_MBps_during_repair": round(during, 1),
        "foreground_errors": fg.errors,
    }


if __name__ == "__main__":
    main()
