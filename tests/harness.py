"""Real clusters for tests: `shoal up` as a subprocess, processes found by command line.

Nothing here stands in for a Shoal component: the cluster is the same command a user
runs, and faults are real signals sent to real node processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from hashlib import blake2b
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from cluster.membership import Member
from cluster.metadata import candidates
from cluster.nodeclient import NodeClient
from cluster.process import disk_capacity, free_port
from gateway.adminclient import AdminClient, locate
from placement.hrw import owners

ROOT = Path(__file__).resolve().parent.parent
SHOAL = Path(sys.executable).with_name("shoal")


def digest_by_definition(records: dict[str, dict]) -> tuple[int, str]:
    """A metadata range's anti-entropy digest, by definition: blake2b-128 over each key
    (in byte order), NUL, json.dumps of its record's hlc, newline. Every node version must
    agree on it, or anti-entropy would see differences that are not there."""
    h = blake2b(digest_size=16)
    for key in sorted(records, key=str.encode):
        h.update(key.encode() + b"\0" + json.dumps(records[key]["hlc"]).encode() + b"\n")
    return len(records), h.hexdigest()


def rocksdb_options(db: Path) -> str:
    """A DB's newest OPTIONS file: what RocksDB really ran with."""
    return max(db.glob("OPTIONS-*"), key=lambda p: int(p.name.split("-")[1])).read_text()


def cmdlines() -> dict[int, list[str]]:
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                raw = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if raw:
                out[int(entry.name)] = raw.decode(errors="replace").split("\0")[:-1]
    return out


def exited(pid: int) -> bool:
    """True once a process has finished exiting. Its cmdline empties when its memory is
    released, before its files (and so its RocksDB lock) are closed; only a zombie or a
    vanished /proc entry means everything is released -- for every thread: the main
    thread turns zombie while RocksDB's threads may still hold the files open."""
    states = []
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            states.append(stat.read_text().rsplit(")", 1)[1].split()[0])
        except OSError:
            continue  # that thread is gone
    return all(state in ("Z", "X") for state in states)


def process_spec(pid: int) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) of a live process, to start an identical one later."""
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    raw_env = Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0")
    return argv, dict(item.split("=", 1) for item in raw_env if "=" in item)


class ShoalCluster:
    """`shoal up --nodes N --zones Z` on a fresh port and data directory."""

    def __init__(self, data: Path, nodes: int = 6, zones: int = 3, website: bool = False
                 ) -> None:
        self.data = data
        self.nodes = nodes
        self.zones = zones
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.website_port = free_port() if website else None  # `shoal up --website-port`
        self.website_endpoint = f"http://127.0.0.1:{self.website_port}" if website else ""
        self.proc: subprocess.Popen | None = None
        self.access_key = self.secret_key = ""
        self.extra: list[subprocess.Popen] = []
        self.killed: dict[str, tuple[list[str], dict[str, str]]] = {}

    def start(self, timeout: float = 90.0) -> float:
        """Start and wait until serving; returns the seconds it took."""
        started = time.monotonic()
        self.log = open(self.data.with_suffix(".up.log"), "ab")  # noqa: SIM115
        self.data.mkdir(parents=True, exist_ok=True)
        out = self.data.parent / f"{self.data.name}.stdout"
        self.proc = subprocess.Popen(
            [str(SHOAL), "up", "--nodes", str(self.nodes), "--zones", str(self.zones),
             "--data", str(self.data), "--port", str(self.port),
             *(["--website-port", str(self.website_port)] if self.website_port else [])],
            stdout=open(out, "wb"), stderr=self.log, stdin=subprocess.DEVNULL)  # noqa: SIM115
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = out.read_text(errors="replace")
            if "Press Ctrl-C" in text:
                self.access_key = re.search(r"access key: (\S+)", text).group(1)
                self.secret_key = re.search(r"secret key: (\S+)", text).group(1)
                return time.monotonic() - started
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"shoal up failed:\n{out.read_text()}\n{self.tail_logs()}")

    def tail_logs(self) -> str:
        parts = []
        for log in sorted(self.data.glob("*.log")):
            parts.append(f"--- {log.name}\n" + log.read_text(errors="replace")[-3000:])
        return "\n".join(parts)

    def stop(self) -> None:
        for p in self.extra:
            if p.poll() is None:
                p.terminate()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        for pid in self.node_pids().values():  # stopped (SIGSTOP) children ignore SIGTERM
            os.kill(pid, signal.SIGCONT)
        for p in self.extra:
            p.wait(10)

    # Processes ---------------------------------------------------------------

    def node_pids(self) -> dict[str, int]:
        """{node name: pid} of this cluster's live `shoal node` processes."""
        found = {}
        for pid, argv in cmdlines().items():
            if "node" in argv and "--data" in argv:
                data = argv[argv.index("--data") + 1]
                if Path(data).parent == self.data:
                    found[Path(data).name] = pid
        return found

    def gateway_pids(self) -> list[int]:
        return [pid for pid, argv in cmdlines().items()
                if "gateway" in argv and str(self.data) in " ".join(argv)]

    def metadata_owners(self, partition: str) -> list[str]:
        """A partition's metadata owners, computed by the placement library from the
        membership `shoal up` creates (node-i in zone z(i mod zones), one disk)."""
        cap = disk_capacity(self.data)
        members = [Member(name=f"node-{i + 1}", addr="", status="alive", role="node", api="",
                          zone=f"z{i % self.zones + 1}", capacity=cap)
                   for i in range(self.nodes)]
        return [c.name for c in owners(partition.encode(), candidates(members), 3)]

    def signal_node(self, name: str, sig: int) -> None:
        os.kill(self.node_pids()[name], sig)

    def kill_node(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Kill a node process, remembering how to start it again."""
        pid = self.node_pids()[name]
        self.killed[name] = process_spec(pid)
        os.kill(pid, sig)
        assert wait_until(lambda: exited(pid), 20), f"{name} (pid {pid}) did not exit"

    def restart_node(self, name: str) -> None:
        """Start a killed node again: same command line, same data, same ports; returns
        once its node API answers (gossip may still show the old incarnation alive, so
        `wait_healthy` alone can return while the node is still opening RocksDB)."""
        spec = self.killed.pop(name)
        self.respawn(spec)
        assert wait_until(lambda: spec_answers(spec), 60), f"{name} did not answer"

    def respawn(self, spec: tuple[list[str], dict[str, str]]) -> None:
        argv, env = spec
        self.extra.append(subprocess.Popen(argv, env=env, stdout=self.log, stderr=self.log,
                                           stdin=subprocess.DEVNULL))

    def start_gateway(self) -> str:
        """A second gateway process joining the same cluster; returns its endpoint."""
        ident = json.loads((self.data / "cluster.json").read_text())
        runtime = json.loads((self.data / "runtime.json").read_text())
        port = free_port()
        env = {**os.environ, "SHOAL_CLUSTER_SECRET": ident["cluster_secret"],
               "SHOAL_GOSSIP_KEY": ident["gossip_key"], "SHOAL_RPC_TOKEN": ident["rpc_token"],
               "SHOAL_ACCESS_KEY": self.access_key, "SHOAL_SECRET_KEY": self.secret_key}
        name = f"gateway-{port}"
        self.extra.append(subprocess.Popen(
            [str(SHOAL), "gateway", "--host", "127.0.0.1", "--port", str(port),
             "--data", str(self.data / name), "--name", name,
             "--serf-bind", f"127.0.0.1:{free_port()}",
             "--serf-rpc", f"127.0.0.1:{free_port()}", "--join", runtime["seed"]],
            env=env, stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL))
        endpoint = f"http://127.0.0.1:{port}"
        wait_healthy(endpoint, self.nodes)
        return endpoint

    # Clients -----------------------------------------------------------------

    def client(self, endpoint: str | None = None, **config: object):  # noqa: ANN201
        options = {"s3": {"addressing_style": "path"},
                   "retries": {"max_attempts": 2, "mode": "standard"}, **config}
        return boto3.client(
            "s3", endpoint_url=endpoint or self.endpoint, region_name="us-east-1",
            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
            config=Config(**options))  # type: ignore[arg-type]

    def aws_env(self) -> dict[str, str]:
        return {**os.environ, "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_EC2_METADATA_DISABLED": "true", "AWS_PAGER": ""}

    def aws(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """The Debian aws CLI v2 (/usr/bin/aws), never a v1 from PATH."""
        return subprocess.run(["/usr/bin/aws", "--endpoint-url", self.endpoint, *args],
                              env=self.aws_env(), capture_output=True, text=True, check=check,
                              timeout=600)


@contextmanager
def cluster_with_env(data: Path, env: dict[str, str], nodes: int = 6,
                     zones: int = 3) -> Iterator[ShoalCluster]:
    """A started cluster whose nodes run with ``env`` (`shoal up` passes its environment
    on to every node); the environment is restored afterwards."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    c = ShoalCluster(data, nodes=nodes, zones=zones)
    try:
        c.start()
        yield c
    finally:
        c.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def error_of(call, *args, **kwargs) -> tuple[str, int]:  # noqa: ANN001
    """(S3 error code, HTTP status) of a boto3 call that must fail."""
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    err = info.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def wait_healthy(endpoint: str, nodes: int, timeout: float = 30.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(endpoint + "/_shoal/health", timeout=1) as r:
                if json.load(r)["nodes"].get("alive", 0) >= nodes:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{endpoint} did not see {nodes} alive nodes")


def spec_answers(spec: tuple[list[str], dict[str, str]]) -> bool:
    """Whether the node started from ``spec`` (``process_spec``) answers on its API port."""
    argv, env = spec
    port = argv[argv.index("--api-port") + 1] if "--api-port" in argv else env["SHOAL_API_PORT"]
    return node_answers(f"http://127.0.0.1:{port}", env["SHOAL_CLUSTER_SECRET"].encode())


def node_answers(api: str, secret: bytes) -> bool:
    """Whether a storage node's API answers a signed health call."""
    import urllib.request

    from cluster.nodeauth import content_hash, sign

    req = urllib.request.Request(api + "/health", headers=sign(secret, "GET", "/health",
                                                               content_hash(b"")))
    try:
        with urllib.request.urlopen(req, timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def metadata_placement(cluster: ShoalCluster, bucket: str, key: str
                       ) -> tuple[list[str], dict[str, str]]:
    """The metadata owners of ``bucket`` in the order reads ask them (as the gateway sees
    them), and every node's API by name."""
    admin = AdminClient(*locate(cluster.data))
    owners = list(admin.object_health(bucket, key)["metadata"])
    return owners, {n["name"]: n["api"] for n in admin.status()["nodes"]}


def with_node_client(secret: bytes, call, **options: object):  # noqa: ANN001, ANN201
    """``await call(client)`` with a started NodeClient holding ``secret``, closed after."""

    async def run():  # noqa: ANN202
        client = NodeClient(secret, **options)  # type: ignore[arg-type]
        await client.start()
        try:
            return await call(client)
        finally:
            await client.close()

    return asyncio.run(run())


def node_call(cluster: ShoalCluster, call):  # noqa: ANN001, ANN201
    """``await call(client)`` with a NodeClient holding the cluster's secret."""
    secret = json.loads((cluster.data / "cluster.json").read_text())["cluster_secret"]
    return with_node_client(secret.encode(), call)


def on_node(cluster: ShoalCluster, api: str, keys: list[str],
            put: list | None = None) -> list:
    """The records ``keys`` on one node (after putting ``put``, which must all apply),
    over the node API."""

    async def call(client: NodeClient) -> list:
        if put:
            assert await client.meta_put(api, put) == [True] * len(put)
        return await client.meta_get(api, keys)

    return node_call(cluster, call)


def wait_until(predicate, timeout: float, interval: float = 0.2) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def http(method: str, url: str, data: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """A plain HTTP request (no SDK): (status, headers, body), errors included."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()
