"""What every Shoal process shares: secrets from the environment, ports, its serf agent."""

from __future__ import annotations

import gc
import os
import random
import secrets
import shutil
import socket
import string
from dataclasses import dataclass
from pathlib import Path

from cluster.serfagent import SerfAgent, SerfConfig, split_hostport


@dataclass(frozen=True)
class Secrets:
    """Cluster secrets. Passed by environment only, never on a command line (ps shows it)."""

    cluster_secret: str  # node API HMAC key
    gossip_key: str  # serf encrypt key
    rpc_token: str  # serf agent RPC auth

    ENV = ("SHOAL_CLUSTER_SECRET", "SHOAL_GOSSIP_KEY", "SHOAL_RPC_TOKEN")

    @classmethod
    def from_env(cls) -> Secrets:
        missing = [name for name in cls.ENV if not os.environ.get(name)]
        if missing:
            raise SystemExit(f"shoal: set {', '.join(missing)} in the environment")
        return cls(*(os.environ[name] for name in cls.ENV))

    def env(self) -> dict[str, str]:
        return dict(zip(self.ENV, (self.cluster_secret, self.gossip_key, self.rpc_token),
                        strict=True))


SECRET_ALPHABET = string.ascii_letters + string.digits


def new_secret_key() -> str:
    """An S3 secret access key or admin token: 40 letters and digits (238 bits), as long
    as AWS's secrets. Not URL-safe base64: a secret starting with "-" reads as an option
    to the aws CLI, s3cmd and other argparse-style tools, so it could not be passed on a
    command line."""
    return "".join(secrets.choice(SECRET_ALPHABET) for _ in range(40))


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_handed_out: set[int] = set()


def reserve_ports(*ports: int | None) -> None:
    """Ports this process was told to use (`shoal up --port`): ``free_port`` must not
    hand them to a child, which could bind one before the process meant for it does."""
    _handed_out.update(p for p in ports if p)


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for TCP and UDP (serf gossips on both), chosen below the kernel's
    ephemeral range: a port from bind(0) is an ephemeral one, which any outgoing
    connection may take before the process meant to listen on it gets there. Never the
    same port twice in one process: callers pick many ports before any child binds them
    (`shoal up` ~20), and a repeat would make two children fight over one port."""
    low, high = 20000, _ephemeral_start()
    for _ in range(200 if high - low > 1000 else 0):
        port = random.randrange(low, high)
        if port in _handed_out:
            continue
        try:
            with socket.socket() as tcp, socket.socket(type=socket.SOCK_DGRAM) as udp:
                tcp.bind((host, port))
                udp.bind((host, port))
        except OSError:
            continue
        _handed_out.add(port)
        return port
    with socket.socket() as s:  # no room below the ephemeral range: fall back
        s.bind((host, 0))
        return s.getsockname()[1]


def own_address() -> str:
    """This host's address as peers see it (containers: the service network address)."""
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


def disk_capacity(path: Path) -> int:
    return shutil.disk_usage(path).total


def start_serf(name: str, data: Path, bind: str, rpc: str, join: list[str],
               tags: dict[str, str], secrets: Secrets) -> SerfAgent:
    """Start this process's own serf agent (a child that dies with us).

    SHOAL_FAILED_TIMEOUT (seconds, default 3600; the same on every process): how long
    gossip keeps a failed node before it forgets (reaps) it. A forgotten node stops
    owning metadata partitions -- they re-home to the next owners by rendezvous hash,
    which pull them from the surviving owners -- and rejoins as new if it comes back.
    """
    host, _ = split_hostport(bind)
    advertise = f"{own_address()}:{split_hostport(bind)[1]}" if host == "0.0.0.0" else None
    forget = float(os.environ.get("SHOAL_FAILED_TIMEOUT") or 3600)
    agent = SerfAgent(SerfConfig(
        node_name=name, bind=bind, rpc_addr=rpc, tags=tags, encrypt_key=secrets.gossip_key,
        rpc_auth=secrets.rpc_token, join=[j for j in join if j], data_dir=data / "serf",
        advertise=advertise, reconnect_timeout=f"{forget:g}s",
    ))
    agent.start()
    return agent


GC_YOUNG = 20_000  # Python's default is 700


def tune_gc() -> None:
    """Let the cyclic GC skip what a serving process keeps for life, and run less often.

    Call once the process has built its app. With Python's defaults the gateway spent
    ~6 % of its CPU in the GC under small PUTs and GETs, and ~20 % while listing: a
    1000-key page decodes ~12,000 dicts and lists that live until the page is sent, so
    young collections walked them again and again, and full collections walked everything
    imported at start as well (~40 ms each mid-listing). Frozen startup objects are never
    walked again. A young generation above a page's worth is collected a few times a
    minute under load, ~1 µs per object (a pause of up to ~20 ms here). No collection
    before the freeze: it would cost each node ~0.1 s of start for little garbage."""
    gc.freeze()
    gc.set_threshold(GC_YOUNG, 20, 20)


MMAP_THRESHOLD = 64 << 20
TRIM_THRESHOLD = 256 << 20
ARENA_MAX = 2


def tune_malloc() -> None:
    """Keep freed block-sized buffers in the heap instead of handing them back to the
    kernel. glibc serves allocations over 128 KiB with fresh mmaps and trims freed heap
    at once, so every 1 MiB shard and 4 MiB block was zero-filled by page faults again:
    erasure coding a 4 MiB block measured 3.5 ms/MiB that way and 0.57 ms/MiB with these
    thresholds (same machine, pyeclib isa_l_rs_cauchy). A fault costs ~3.5 µs here (a
    fresh 64 MiB copy: 0.93 ms/MiB, a warm one 0.04). The trim threshold is above what a
    process frees at once: at 32 MiB, each storage node still faulted ~220 pages per MiB
    it stored (RocksDB's memtable arenas, freed at every flush, faulted in again) and the
    gateway 81 per MiB uploaded; at 256 MiB, ~40 and 0. Memory still peaks where the
    data path's live buffers do; the heap just stops shrinking below that peak."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return  # not glibc: nothing to tune
    m_trim_threshold, m_mmap_threshold, m_arena_max = -1, -3, -8  # from <malloc.h>
    libc.mallopt(m_mmap_threshold, MMAP_THRESHOLD)
    libc.mallopt(m_trim_threshold, TRIM_THRESHOLD)
    libc.mallopt(m_arena_max, ARENA_MAX)  # each arena keeps its own free memory

