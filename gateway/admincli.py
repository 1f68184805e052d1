"""`shoal status` and `shoal run TASK`: the operator's commands, over the gateway admin API.

The token is the cluster secret today: ``--token``, else $SHOAL_ADMIN_TOKEN, else
$SHOAL_CLUSTER_SECRET, else the ``cluster.json`` of a local cluster's ``--data`` dir.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

BAR = 30


def admin_token(explicit: str | None, data: Path | None) -> str:
    token = explicit or os.environ.get("SHOAL_ADMIN_TOKEN") or os.environ.get(
        "SHOAL_CLUSTER_SECRET")
    if not token and data is not None and (data / "cluster.json").exists():
        token = json.loads((data / "cluster.json").read_text())["cluster_secret"]
    if not token:
        raise SystemExit("shoal: no admin token (--token, SHOAL_ADMIN_TOKEN or --data)")
    return token


def call(endpoint: str, token: str, method: str, path: str) -> dict:
    req = urllib.request.Request(endpoint.rstrip("/") + "/_shoal/admin/" + path, method=method,
                                 headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as err:
        raise SystemExit(f"shoal: {err.code} {err.read().decode(errors='replace')}") from None
    except OSError as err:
        raise SystemExit(f"shoal: cannot reach {endpoint}: {err}") from None


def progress_bar(done: int, total: int) -> str:
    filled = BAR if total == 0 else BAR * done // total
    pct = 100 if total == 0 else 100 * done // total
    return f"[{'#' * filled}{'.' * (BAR - filled)}] {pct:3d}%"


def render_status(report: dict) -> str:
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


def status(endpoint: str, token: str, watch: bool) -> None:
    while True:
        report = call(endpoint, token, "GET", "repair")
        print(render_status(report), flush=True)
        if not watch or not report["progress"]["running"]:
            return
        time.sleep(1.0)


def run(endpoint: str, token: str, task: str) -> None:
    result = call(endpoint, token, "POST", f"run?task={task}")
    print(f"{task} started on {len(result['started'])} nodes: {', '.join(result['started'])}")
