"""Keep-alive HTTP/1.1 connections to storage nodes: the transport under NodeClient.

Why not aiohttp: on this 2-core machine (uvloop, loopback) aiohttp spent 1.45 ms of CPU
receiving one 1 MiB response and 0.21 ms on a tiny one; this pool, an asyncio protocol
around httptools' response parser (uvicorn's own), spends 0.54 ms and 0.04 ms. Every
gateway read and write is a handful of node calls, so that was a third of the gateway's
CPU on large GETs. The node API needs little of HTTP: one request at a time per
connection, bodies that are bytes in memory, keep-alive, and two timeouts.

A large body (a shard) is read by the kernel straight into one buffer of its announced
length (``asyncio.BufferedProtocol``): receiving a 1 MiB shard otherwise copied it three
times after the read (into a bytes object, into httptools' body slices, into their
join), 11 % of a gateway's samples during large GETs. Such bodies come back as a
``bytearray``; everything else as ``bytes``.

Contract for callers (``HttpPool.request``):

* returns (status, lower-case headers, body) for any complete response;
* raises ``OSError`` (refused, reset, unreachable), ``TimeoutError`` (connect or total
  deadline) or ``ConnectionLost`` (closed or malformed mid-response);
* a pooled connection that the node closed while idle is retried once on a fresh one,
  transparently: callers must only send idempotent requests (every node API call is);
* a cancelled call closes its connection, so a late answer never reaches another call.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httptools

Response = tuple[int, dict[str, str], bytes | bytearray]
DIRECT_MIN = 128 * 1024  # a 200 body at least this long is read straight into its buffer
_INBOX = 64 * 1024  # bytes read at once for heads and small bodies


class ConnectionLost(Exception):
    """The connection closed, or sent something that is not HTTP, before a full answer."""

    def __init__(self, message: str, started: bool) -> None:
        super().__init__(message)
        self.started = started  # some response bytes had arrived


class _Connection(asyncio.BufferedProtocol):
    """One keep-alive connection; ``exchange`` sends a request and awaits its response."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.open = False
        self.reusable = False
        self.idle_since = 0.0
        self._waiter: asyncio.Future[Response] | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._started = False
        self._inbox = bytearray(_INBOX)
        self._direct: bytearray | None = None  # the body's own buffer, once it is known
        self._filled = 0  # bytes of ``_direct`` received
        self._head_only = False  # the request was a HEAD: no body follows

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.open = True
        sock = transport.get_extra_info("socket")
        if sock is not None:  # requests are small writes awaiting an answer: no Nagle delay
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self._fail(ConnectionLost(f"connection closed: {exc!r}", self._started))

    def get_buffer(self, sizehint: int) -> memoryview | bytearray:
        if self._direct is not None:
            return memoryview(self._direct)[self._filled:]
        return self._inbox

    def buffer_updated(self, nbytes: int) -> None:
        if self._waiter is None:  # nothing was asked: the node is not speaking our protocol
            self.close()
            return
        self._started = True
        if self._direct is not None:
            self._filled += nbytes
            if self._filled == len(self._direct):
                self._finish(self._direct)
            return
        try:
            self._parser.feed_data(memoryview(self._inbox)[:nbytes])
        except httptools.HttpParserError as exc:
            self._fail(ConnectionLost(f"bad HTTP response: {exc}", True))
            self.close()

    # -- httptools callbacks --------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        length = self._headers.get("content-length", "")
        if (self._parser.get_status_code() == 200 and not self._head_only
                and length.isdigit() and int(length) >= DIRECT_MIN
                and "transfer-encoding" not in self._headers):
            self._direct, self._filled = bytearray(int(length)), 0

    def on_body(self, body: bytes) -> None:
        if self._direct is None:
            self._body.append(body)
            return
        # The part of the body that came with the head; the rest is read in place.
        self._direct[self._filled:self._filled + len(body)] = body
        self._filled += len(body)

    def on_message_complete(self) -> None:
        if self._direct is not None:
            self._finish(self._direct)
            return
        self._finish(self._body[0] if len(self._body) == 1 else b"".join(self._body))

    def _finish(self, body: bytes | bytearray) -> None:
        self.reusable = self._parser.should_keep_alive()
        self._direct = None
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((self._parser.get_status_code(), self._headers, body))

    # -- use --------------------------------------------------------------------------------

    async def exchange(self, head: bytes, body: bytes) -> Response:
        assert self.transport is not None and self._waiter is None
        self._parser = httptools.HttpResponseParser(self)
        self._headers, self._body, self._started = {}, [], False
        self._head_only = head.startswith(b"HEAD ")
        self.reusable = False
        self._waiter = asyncio.get_running_loop().create_future()
        # writelines: the (up to 1 MiB) body is not copied into a joined buffer first.
        self.transport.writelines([head, body] if body else [head])
        return await self._waiter

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def close(self) -> None:
        self.open = False
        if self.transport is not None:
            self.transport.close()


class HttpPool:
    """Pooled keep-alive connections per node address, at most ``per_host`` open at once."""

    def __init__(self, timeout: float = 5.0, connect_timeout: float = 1.0,
                 per_host: int = 64, idle_timeout: float = 20.0) -> None:
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._per_host = per_host
        # Below the nodes' keep-alive timeout (30 s), so the pool rarely hands out a
        # connection the node is closing.
        self._idle_timeout = idle_timeout
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._slots: dict[tuple[str, int], asyncio.Semaphore] = {}
        self._addresses: dict[str, tuple[str, int]] = {}

    async def request(self, base_url: str, method: str, target: str,
                      headers: Callable[[], dict[str, str]], body: bytes = b"") -> Response:
        """One request to ``base_url`` (``http://host:port``); see the module contract.
        ``headers`` is called for every attempt, so a retry carries fresh authentication
        (the node refuses a replayed nonce)."""
        address = self._address(base_url)
        slots = self._slots.setdefault(address, asyncio.Semaphore(self._per_host))
        async with asyncio.timeout(self._timeout), slots:
            for attempt in (1, 2):
                head = _request_head(method, target, address, headers(), len(body))
                conn, reused = await self._acquire(address)
                try:
                    response = await conn.exchange(head, body)
                except ConnectionLost as exc:
                    conn.close()
                    if reused and not exc.started and attempt == 1:
                        continue  # the node closed this idle connection: try a fresh one
                    raise
                except BaseException:
                    conn.close()  # cancelled or timed out: its late answer must go nowhere
                    raise
                self._release(address, conn)
                return response
        raise AssertionError("unreachable")  # the loop returns or raises

    def close(self) -> None:
        """Close every idle connection; calls in flight keep theirs until they finish."""
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()

    def _address(self, base_url: str) -> tuple[str, int]:
        address = self._addresses.get(base_url)
        if address is None:
            parts = urlsplit(base_url)
            if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/"):
                raise ValueError(f"node API address must be http://host:port: {base_url!r}")
            address = (parts.hostname, parts.port or 80)
            self._addresses[base_url] = address
        return address

    async def _acquire(self, address: tuple[str, int]) -> tuple[_Connection, bool]:
        idle = self._idle.get(address)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if conn.open and now - conn.idle_since < self._idle_timeout:
                return conn, True
            conn.close()
        loop = asyncio.get_running_loop()
        _, conn = await asyncio.wait_for(
            loop.create_connection(_Connection, *address), self._connect_timeout)
        return conn, False

    def _release(self, address: tuple[str, int], conn: _Connection) -> None:
        if not (conn.open and conn.reusable):
            conn.close()
            return
        conn.idle_since = time.monotonic()
        self._idle.setdefault(address, []).append(conn)


def _request_head(method: str, target: str, address: tuple[str, int],
                  headers: dict[str, str], length: int) -> bytes:
    if any(c in target for c in " \r\n"):
        raise ValueError(f"request target must be encoded: {target!r}")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {address[0]}:{address[1]}",
             f"Content-Length: {length}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
