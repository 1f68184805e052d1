"""The live membership view every gateway and storage node keeps.

The view is a copy of the local serf agent's member list. Two daemon threads
keep it current:

* the *stream* thread holds one RPC connection subscribed to member events.
  Events are only hints: each one wakes the refresher. Serf updates its own
  member table before it emits the event, so a full read after an event sees
  at least that change, and bursts (several ``member-update`` for one tag
  change) collapse into a few reads. When the connection drops (agent restart)
  the thread reconnects with backoff and forces a full read, since events sent
  while it was away are lost.
* the *refresh* thread owns the second (query) connection and is the only
  writer of the view. It re-reads the full member list whenever woken and at
  least every ``refresh`` seconds, so a lost event cannot leave the view stale
  for longer than that.

Latency: the serf agent coalesces member events (1 s of quiet, at most 3 s; fixed
in the agent, not configurable), so the view trails serf's own table by about
min(that delay, time to the next refresh). Failure detection itself adds ~5-8 s.

Invariants: readers get immutable snapshots (frozen ``Member`` records in a new
list); ``version`` increases by one exactly when a full read differs from the
previous view; ``on_change`` callbacks run in the refresh thread after the
change is visible (or in ``start()`` for the first read). If the agent is
unreachable the last view is kept and errors are logged, never raised from the
threads. Neither the RPC token nor the gossip key is ever logged.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cluster.serfagent import connect_rpc
from cluster.serfimport import SerfClient

log = logging.getLogger(__name__)

MEMBER_EVENTS = "member-join,member-leave,member-failed,member-update,member-reap"
_BACKOFF_MIN = 0.1
_BACKOFF_MAX = 5.0


@dataclass(frozen=True)
class Member:
    """One serf member. ``addr`` is its gossip address ``host:port``; ``status`` is
    serf's: alive | failed | left | leaving. Missing tags read as "" (capacity 0).
    ``draining`` (tag ``drain=1``, set by `shoal node drain`): the node still serves what
    it holds but takes no new shards and owns no metadata partitions. ``rot`` (tag
    ``rot``): how many rotten shards the node's scrubber has deleted since it started; a
    change tells the repairers to walk every record (cluster.repair)."""

    name: str
    addr: str
    status: str
    role: str
    api: str
    zone: str
    capacity: int
    draining: bool = False
    rot: int = 0


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def _format_addr(raw: Any, port: Any) -> str:
    """serf sends Addr as packed bytes (4 or 16, IPv4 often v6-mapped)."""
    host = _text(raw)
    if isinstance(raw, bytes) and len(raw) in (4, 16):
        ip = ipaddress.ip_address(raw)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        host = f"[{ip}]" if ip.version == 6 else str(ip)
    return f"{host}:{port}" if port is not None else host


def member_from_serf(raw: dict[str, Any]) -> Member:
    """Build a Member from one entry of serf's ``members`` reply or event body."""
    tags = {_text(k): _text(v) for k, v in (raw.get("Tags") or {}).items()}
    capacity, rot = _count(tags.get("capacity")), _count(tags.get("rot"))
    return Member(
        name=_text(raw.get("Name")),
        addr=_format_addr(raw.get("Addr"), raw.get("Port")),
        status=_text(raw.get("Status")),
        role=tags.get("role", ""),
        api=tags.get("api", ""),
        zone=tags.get("zone", ""),
        capacity=capacity,
        draining=tags.get("drain") == "1",
        rot=rot,
    )


def _count(tag: str | None) -> int:
    """A numeric tag; missing or malformed reads as 0."""
    try:
        return int(tag or 0)
    except ValueError:
        return 0


def _rpc_error(head: Any) -> str:
    return _text(head.get("Error")) if isinstance(head, dict) else "malformed reply"


class Membership:
    """Live view of the cluster: a thread streams serf member events and a periodic
    refresh (every `refresh` seconds, default 2) re-reads the full member list, so a lost
    event cannot leave the view stale for long. Thread-safe snapshot reads.

    One-shot: ``start()`` once, ``stop()`` once."""

    def __init__(self, rpc_host: str, rpc_port: int, rpc_auth: str, refresh: float = 2.0) -> None:
        self.rpc_host = rpc_host
        self.rpc_port = rpc_port
        self.refresh = refresh
        self._rpc_auth = rpc_auth
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._view: dict[str, Member] = {}
        self._version = 0
        self._callbacks: list[Callable[[], None]] = []
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._query: SerfClient | None = None
        self._stream: SerfClient | None = None
        self._threads: list[threading.Thread] = []

    def __repr__(self) -> str:
        return f"Membership({self.rpc_host}:{self.rpc_port}, version={self._version})"

    # -- reads ---------------------------------------------------------------

    @property
    def version(self) -> int:
        """Increments whenever the view changes."""
        with self._lock:
            return self._version

    def members(self) -> list[Member]:
        """Everyone serf knows (any status), sorted by name."""
        with self._lock:
            return sorted(self._view.values(), key=lambda m: m.name)

    def nodes(self, alive_only: bool = True) -> list[Member]:
        """Storage nodes (role == "node"), sorted by name; only alive ones by default."""
        return [
            m for m in self.members()
            if m.role == "node" and (m.status == "alive" or not alive_only)
        ]

    def wait_for(self, predicate: Callable[[list[Member]], bool], timeout: float) -> bool:
        """Block until ``predicate(members())`` holds (True) or ``timeout`` passes (False).
        The predicate runs outside the lock, once now and once after each change."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                seen = self._version
                snapshot = sorted(self._view.values(), key=lambda m: m.name)
            if predicate(snapshot):
                return True
            with self._changed:
                while self._version == seen:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._changed.wait(remaining)

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after each change of the view (from the refresh thread).
        Exceptions it raises are logged and do not stop the thread."""
        with self._lock:
            self._callbacks.append(callback)

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        """Read the full member list now (raising if the agent is unreachable or
        refuses the token), then start the stream and refresh threads."""
        if self._threads:
            raise RuntimeError("Membership already started")
        self._refresh_once()
        for name, target in (("stream", self._stream_loop), ("refresh", self._refresh_loop)):
            thread = threading.Thread(
                target=target, name=f"serf-{name}-{self.rpc_port}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        """Stop both threads and close both connections; idempotent."""
        with self._lock:
            self._stopping.set()
            stream = self._stream
        self._wake.set()
        if stream is not None:
            _shutdown(stream)
        for thread in self._threads:
            thread.join(timeout=10)
        if self._query is not None:
            self._query.close()
            self._query = None

    # -- threads -------------------------------------------------------------

    def _connect(self) -> SerfClient:
        return connect_rpc(self.rpc_host, self.rpc_port, self._rpc_auth)

    def _refresh_once(self) -> None:
        if self._query is None:
            self._query = self._connect()
        try:
            resp = self._query.members()
            error = _rpc_error(resp.head)
            if error:
                raise RuntimeError(f"serf members RPC failed: {error}")
            raw = (resp.body.get("Members") or []) if isinstance(resp.body, dict) else []
        except BaseException:
            # The connection may be half-read or dead; never reuse it.
            self._query.close()
            self._query = None
            raise
        view = {m.name: m for m in map(member_from_serf, raw)}
        with self._lock:
            if view == self._view:
                return
            self._view = view
            self._version += 1
            self._changed.notify_all()
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback()
            except Exception:
                log.exception("membership on_change callback failed")

    def _refresh_loop(self) -> None:
        backoff = 0.0
        failing = False
        while not self._stopping.is_set():
            self._wake.wait(min(backoff, self.refresh) if failing else self.refresh)
            if self._stopping.is_set():
                return
            # Clear before reading: an event arriving during the read wakes us again.
            self._wake.clear()
            try:
                self._refresh_once()
            except Exception as e:
                backoff = min(max(backoff * 2, _BACKOFF_MIN), _BACKOFF_MAX)
                level = logging.DEBUG if failing else logging.WARNING
                log.log(level, "serf member refresh from %s:%s failed: %s: %s",
                        self.rpc_host, self.rpc_port, type(e).__name__, e)
                failing = True
            else:
                if failing:
                    log.info("serf member refresh from %s:%s recovered",
                             self.rpc_host, self.rpc_port)
                failing = False
                backoff = 0.0

    def _stream_loop(self) -> None:
        backoff = _BACKOFF_MIN
        while not self._stopping.is_set():
            client: SerfClient | None = None
            try:
                client = self._connect()
                with self._lock:
                    if self._stopping.is_set():
                        return
                    self._stream = client
                resp = client.stream(MEMBER_EVENTS)
                error = _rpc_error(resp.head)
                if error:
                    raise RuntimeError(f"serf stream RPC failed: {error}")
                backoff = _BACKOFF_MIN
                # Events sent while we were not subscribed are lost: resync.
                self._wake.set()
                for _event in resp.body:
                    if self._stopping.is_set():
                        return
                    self._wake.set()
                if not self._stopping.is_set():
                    raise ConnectionError("serf event stream ended")
            except Exception as e:
                if self._stopping.is_set():
                    return
                log.warning("serf event stream from %s:%s lost (%s: %s); retrying in %.1fs",
                            self.rpc_host, self.rpc_port, type(e).__name__, e, backoff)
            finally:
                if client is not None:
                    with self._lock:
                        if self._stream is client:
                            self._stream = None
                    client.close()
            self._stopping.wait(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX)


def _shutdown(client: SerfClient) -> None:
    """Unblock a thread sitting in recv() on this client's socket. close() alone
    does not wake a blocked recv on Linux; shutdown() does."""
    sock = getattr(getattr(client, "connection", None), "_socket", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
