"""Real serf agents on loopback: the membership view follows joins, crashes, leaves,
tag changes and agent restarts; the gossip key and RPC token keep strangers out."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from serfclient import SerfClient
from serfclient.connection import SerfConnectionError

from cluster.membership import Member, Membership, member_from_serf
from cluster.serfagent import (
    SerfAgent,
    SerfAuthError,
    SerfConfig,
    connect_rpc,
    generate_gossip_key,
    split_hostport,
)

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parents[2]
TOKEN = "test-rpc-token-0123456789"
_used_ports: set[int] = set()


def free_port() -> int:
    """A loopback port free for both TCP and UDP (serf gossips on both)."""
    while True:
        with socket.socket() as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        if port not in _used_ports:
            _used_ports.add(port)
            return port


def serf_config(tmp_path: Path, name: str, key: str, join: list[str],
                role: str = "node", zone: str = "z1") -> SerfConfig:
    api_port = free_port()
    return SerfConfig(
        node_name=name,
        bind=f"127.0.0.1:{free_port()}",
        rpc_addr=f"127.0.0.1:{free_port()}",
        tags={"role": role, "api": f"http://127.0.0.1:{api_port}", "zone": zone,
              "capacity": str(1 << 30)},
        encrypt_key=key,
        rpc_auth=TOKEN,
        join=join,
        data_dir=tmp_path / name,
    )


@pytest.fixture
def serf_agent(tmp_path: Path) -> Iterator[Callable[..., SerfAgent]]:
    """Factory for started agents; every one is stopped at teardown."""
    agents: list[SerfAgent] = []

    def make(name: str, key: str, join: list[str] | None = None, start: bool = True,
             **kw: str) -> SerfAgent:
        agent = SerfAgent(serf_config(tmp_path, name, key, join or [], **kw))
        agents.append(agent)
        if start:
            agent.start()
        return agent

    yield make
    for agent in agents:
        agent.stop()


@pytest.fixture
def watch() -> Iterator[Callable[..., Membership]]:
    """Factory for started Membership views on an agent; stopped at teardown."""
    views: list[Membership] = []

    def make(agent: SerfAgent, refresh: float = 2.0) -> Membership:
        host, port = split_hostport(agent.config.rpc_addr)
        view = Membership(host, port, agent.config.rpc_auth, refresh=refresh)
        views.append(view)
        view.start()
        return view

    yield make
    for view in views:
        view.stop()


def by_name(members: list[Member]) -> dict[str, Member]:
    return {m.name: m for m in members}


def status_is(name: str, status: str) -> Callable[[list[Member]], bool]:
    return lambda ms: name in by_name(ms) and by_name(ms)[name].status == status


def test_agents_with_shared_key_see_each_other_with_their_tags(serf_agent, watch) -> None:
    key = generate_gossip_key()
    # The seed starts last: retry_join makes start order irrelevant.
    n1 = serf_agent("n1", key, zone="z1", start=False)
    g1 = serf_agent("g1", key, [n1.config.bind], role="gateway", zone="z1")
    n2 = serf_agent("n2", key, [n1.config.bind], zone="z2")
    n1.start()
    agents = [n1, n2, g1]
    views = [watch(a) for a in agents]

    def all_alive(ms: list[Member]) -> bool:
        return {m.name for m in ms if m.status == "alive"} == {"n1", "n2", "g1"}

    for view in views:
        assert view.wait_for(all_alive, timeout=20), view.members()
    seen = by_name(views[2].members())
    for agent in agents:
        member = seen[agent.config.node_name]
        tags = agent.config.tags
        assert (member.role, member.api, member.zone, member.capacity) == (
            tags["role"], tags["api"], tags["zone"], int(tags["capacity"]))
        assert member.addr == agent.config.bind
    assert [m.name for m in views[0].nodes()] == ["n1", "n2"]
    assert views[0].version >= 1


def test_agent_files_keep_secrets_private(serf_agent) -> None:
    key = generate_gossip_key()
    agent = serf_agent("n1", key)
    assert agent.config_path.stat().st_mode & 0o777 == 0o600
    log_text = agent.log_path.read_text()
    assert "Encrypted: true" in log_text
    assert key not in log_text and TOKEN not in log_text


def test_tag_change_reaches_the_view_and_fires_on_change(serf_agent, watch) -> None:
    key = generate_gossip_key()
    n1 = serf_agent("n1", key)
    n2 = serf_agent("n2", key, [n1.config.bind])
    view = watch(n1)
    assert view.wait_for(status_is("n2", "alive"), timeout=20)
    calls: list[int] = []
    view.on_change(lambda: calls.append(view.version))
    before = view.version

    n2.set_tags({"zone": "z9", "capacity": "12345"})

    def retagged(ms: list[Member]) -> bool:
        m = by_name(ms).get("n2")
        return m is not None and (m.zone, m.capacity) == ("z9", 12345)

    assert view.wait_for(retagged, timeout=20), view.members()
    assert view.version > before
    assert calls and calls[-1] == view.version


def test_sigkilled_agent_is_failed_in_the_view(serf_agent, watch) -> None:
    key = generate_gossip_key()
    n1 = serf_agent("n1", key)
    n2 = serf_agent("n2", key, [n1.config.bind])
    view = watch(n1)
    assert view.wait_for(status_is("n2", "alive"), timeout=20)
    assert n2.pid is not None

    os.kill(n2.pid, signal.SIGKILL)

    assert view.wait_for(status_is("n2", "failed"), timeout=30), view.members()
    assert [m.name for m in view.nodes()] == ["n1"]
    assert {m.name: m.status for m in view.nodes(alive_only=False)} == {
        "n1": "alive", "n2": "failed"}


def test_graceful_leave_is_left_in_the_view(serf_agent, watch) -> None:
    key = generate_gossip_key()
    n1 = serf_agent("n1", key)
    n2 = serf_agent("n2", key, [n1.config.bind])
    view = watch(n1)
    assert view.wait_for(status_is("n2", "alive"), timeout=20)

    n2.stop(leave=True)

    assert n2.pid is None
    assert view.wait_for(status_is("n2", "left"), timeout=20), view.members()
    assert [m.name for m in view.nodes()] == ["n1"]


def test_agent_with_another_gossip_key_cannot_join(serf_agent) -> None:
    key = generate_gossip_key()
    n1 = serf_agent("n1", key)
    stranger = serf_agent("stranger", generate_gossip_key())
    friend = serf_agent("friend", key)

    def join(agent: SerfAgent) -> tuple[str, int]:
        client = agent.client()
        try:
            resp = client.join([n1.config.bind])
        finally:
            client.close()
        return resp.head["Error"], resp.body["Num"]

    error, joined = join(stranger)
    assert error and joined == 0
    assert join(friend) == ("", 1)

    client = n1.client()
    try:
        names = {m["Name"] for m in client.members().body["Members"]}
    finally:
        client.close()
    assert names == {"n1", "friend"}


def test_wrong_rpc_token_cannot_read_members(serf_agent) -> None:
    n1 = serf_agent("n1", generate_gossip_key())
    host, port = split_hostport(n1.config.rpc_addr)

    with pytest.raises(SerfAuthError):
        connect_rpc(host, port, "not-the-token")
    with pytest.raises(SerfAuthError):
        Membership(host, port, "not-the-token").start()
    # The agent itself refuses, not just our client-side check (serfclient hangs
    # until its timeout on the error reply it ignores).
    for token in ("not-the-token", None):
        raw = SerfClient(host, port, rpc_auth=token, timeout=1)
        try:
            with pytest.raises(SerfConnectionError):
                raw.members()
        finally:
            raw.close()
    client = n1.client()
    try:
        assert [m["Name"] for m in client.members().body["Members"]] == ["n1"]
    finally:
        client.close()


def test_view_follows_events_again_after_its_agent_restarts(serf_agent, watch) -> None:
    key = generate_gossip_key()
    n1 = serf_agent("n1", key)
    n2 = serf_agent("n2", key, [n1.config.bind])
    # A refresh period far beyond the test: only the event stream can bring news.
    view = watch(n1, refresh=300)
    assert view.wait_for(status_is("n2", "alive"), timeout=20)

    n1.stop()  # crash-like: the view's connections drop
    n1.start()

    def zone_of_n2(zone: str) -> Callable[[list[Member]], bool]:
        return lambda ms: "n2" in by_name(ms) and by_name(ms)["n2"].zone == zone

    # The first change may also arrive through the reconnect's full read...
    n2.set_tags({"zone": "after-restart-1"})
    assert view.wait_for(zone_of_n2("after-restart-1"), timeout=30), view.members()
    # ...after which the view is healthy and idle, so this one needs the stream.
    n2.set_tags({"zone": "after-restart-2"})
    assert view.wait_for(zone_of_n2("after-restart-2"), timeout=30), view.members()


_ORPHAN_SCRIPT = """
import sys, time
from pathlib import Path
from cluster.serfagent import SerfAgent, SerfConfig, generate_gossip_key
bind, rpc, data = sys.argv[1:4]
agent = SerfAgent(SerfConfig("orphan", bind, rpc, {"role": "node"}, generate_gossip_key(),
                             "token", [], Path(data)))
agent.start()
print(agent.pid, flush=True)
time.sleep(120)
"""


def _process_gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    # An orphan reparented to a PID 1 that does not reap stays a zombie: dead all the same.
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def test_agent_dies_when_its_parent_is_sigkilled(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN_SCRIPT, f"127.0.0.1:{free_port()}",
         f"127.0.0.1:{free_port()}", str(tmp_path / "orphan")],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    serf_pid = 0
    try:
        assert parent.stdout is not None
        serf_pid = int(parent.stdout.readline())
        assert b"serf" in Path(f"/proc/{serf_pid}/cmdline").read_bytes()
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 15
        while not _process_gone(serf_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _process_gone(serf_pid)
    finally:
        parent.kill()
        parent.wait()
        if serf_pid and not _process_gone(serf_pid):
            os.kill(serf_pid, signal.SIGKILL)


def test_member_from_serf_decodes_addresses_and_missing_tags() -> None:
    mapped = bytes(10) + b"\xff\xff" + bytes([10, 0, 0, 7])
    m = member_from_serf({"Name": "a", "Addr": mapped, "Port": 7946, "Status": "alive",
                          "Tags": {"role": "node", "capacity": "junk"}})
    assert m == Member("a", "10.0.0.7:7946", "alive", "node", "", "", 0)
    v6 = socket.inet_pton(socket.AF_INET6, "fd00::1")
    m = member_from_serf({"Name": "b", "Addr": v6, "Port": 7946, "Status": "failed"})
    assert (m.addr, m.role, m.capacity) == ("[fd00::1]:7946", "", 0)
