"""`shoal up`: a whole cluster on loopback — N node processes and a gateway process.

Each node and the gateway is its own OS process (`shoal node --data DIR/node-3 …`),
exactly as in containers, so an operator or a test can find one and kill it. Secrets
and credentials are generated once and kept in DIR/cluster.json (mode 0600): started
again on the same directory, the cluster comes back with the same identity and data.
A child that dies is left dead (that is what fault tests do); Ctrl-C, SIGINT or
SIGTERM stop every child.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets as random
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cluster.process import Secrets, free_port, new_secret_key, reserve_ports
from cluster.serfagent import generate_gossip_key


@dataclass
class UpOptions:
    nodes: int
    zones: int
    data: Path
    port: int
    host: str
    access_key: str | None
    secret_key: str | None
    workers: int
    website_port: int | None = None
    domain: str = ""  # base domain(s) for virtual-hosted-style addressing


def load_identity(data: Path, access_key: str | None, secret_key: str | None) -> dict:
    """Secrets and credentials of this cluster, created on first start."""
    path = data / "cluster.json"
    ident = json.loads(path.read_text()) if path.exists() else {
        "cluster_secret": random.token_hex(32),
        "gossip_key": generate_gossip_key(),
        "rpc_token": random.token_hex(16),
        "access_key": "SHOAL" + random.token_hex(8).upper(),
        "secret_key": new_secret_key(),
    }
    ident.setdefault("admin_token", new_secret_key())  # older cluster.json lacks it
    ident["access_key"] = access_key or ident["access_key"]
    ident["secret_key"] = secret_key or ident["secret_key"]
    data.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps(ident, indent=2))
    return ident


def shoal_command() -> list[str]:
    script = Path(sys.executable).with_name("shoal")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gateway.cli"]


def _die_with_parent() -> None:
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class LocalCluster:
    def __init__(self, opts: UpOptions) -> None:
        self.opts = opts
        self.ident = load_identity(opts.data, opts.access_key, opts.secret_key)
        self.secrets = Secrets(self.ident["cluster_secret"], self.ident["gossip_key"],
                               self.ident["rpc_token"])
        self.children: list[subprocess.Popen] = []
        # A test picks the gateway's port in its own process: a serf agent that drew the
        # same port here answered the health check with a closed connection (CI, once).
        reserve_ports(opts.port, opts.website_port)
        self.seed = f"127.0.0.1:{free_port()}"

    def _spawn(self, args: list[str], log_name: str, extra_env: dict[str, str]) -> None:
        env = {**os.environ, **self.secrets.env(), **extra_env}
        log = open(self.opts.data / log_name, "ab")  # noqa: SIM115 - owned by the child
        self.children.append(subprocess.Popen(
            shoal_command() + args, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent))

    def start(self) -> None:
        binds = [self.seed, *(f"127.0.0.1:{free_port()}" for _ in range(self.opts.nodes - 1))]
        # Every process may join through any node: the first to come up is joined by the
        # rest, instead of all waiting out serf's 1 s join retry until the seed is up.
        joins = ",".join(binds)
        for i, bind in enumerate(binds):
            self._spawn([
                "node", "--data", str(self.opts.data / f"node-{i + 1}"),
                "--name", f"node-{i + 1}", "--zone", f"z{i % self.opts.zones + 1}",
                "--api-host", "127.0.0.1", "--api-port", str(free_port()),
                "--serf-bind", bind, "--serf-rpc", f"127.0.0.1:{free_port()}",
                "--join", joins,
            ], f"node-{i + 1}.log", {})
        self._spawn([
            "gateway", "--host", self.opts.host, "--port", str(self.opts.port),
            "--data", str(self.opts.data / "gateway"), "--name", "gateway-1",
            "--serf-bind", f"127.0.0.1:{free_port()}", "--serf-rpc", f"127.0.0.1:{free_port()}",
            "--join", joins, "--workers", str(self.opts.workers),
            *(["--website-port", str(self.opts.website_port)] if self.opts.website_port else []),
            *(["--domain", self.opts.domain] if self.opts.domain else []),
        ], "gateway.log", {"SHOAL_ACCESS_KEY": self.ident["access_key"],
                           "SHOAL_SECRET_KEY": self.ident["secret_key"],
                           "SHOAL_ADMIN_TOKEN": self.ident["admin_token"]})

    def endpoint(self) -> str:
        return f"http://{self.opts.host}:{self.opts.port}"

    def wait_ready(self, timeout: float = 60.0) -> bool:
        """True once the gateway answers and sees every node alive."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.endpoint() + "/_shoal/health", timeout=1) as r:
                    if json.load(r)["nodes"].get("alive", 0) >= self.opts.nodes:
                        return True
            except (OSError, http.client.HTTPException):  # not (yet) the gateway answering
                pass
            if any(c.poll() is not None for c in self.children):
                return False
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for child in self.children:
            try:
                child.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                child.kill()


def run_up(opts: UpOptions) -> None:
    started = time.monotonic()
    cluster = LocalCluster(opts)
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    cluster.start()
    try:
        if not cluster.wait_ready():
            print(f"shoal up: the cluster did not come up; see the logs in {opts.data}",
                  file=sys.stderr)
            sys.exit(1)
        runtime = {"endpoint": cluster.endpoint(), "seed": cluster.seed, "pid": os.getpid()}
        website = f"http://{opts.host}:{opts.website_port}" if opts.website_port else ""
        if website:
            runtime["website"] = website
        (opts.data / "runtime.json").write_text(json.dumps(runtime))
        print(f"Shoal is up in {time.monotonic() - started:.1f} s: {opts.nodes} nodes in "
              f"{opts.zones} zones\n"
              f"  endpoint:   {cluster.endpoint()}\n"
              + (f"  website:    {website}\n" if website else "") +
              f"  access key: {cluster.ident['access_key']}\n"
              f"  secret key: {cluster.ident['secret_key']}\n"
              f"  data:       {opts.data}\n"
              f"Press Ctrl-C to stop.", flush=True)
        while not stop:
            time.sleep(0.2)
    finally:
        cluster.stop()
