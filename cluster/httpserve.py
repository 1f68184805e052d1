"""uvicorn's httptools protocol, with a response's writes leaving in one syscall.

uvicorn writes a response's status line and headers in one ``transport.write`` and its
body in another, and uvloop sends each at once: two ``send`` calls per response, and two
wake-ups and reads on the other side. On loopback a send runs the receiver's TCP stack
inline, so each costs ~0.1-0.15 ms of CPU on this VM, and every S3 operation answers
the client once and makes several node requests. With ``CoalescingHttpToolsProtocol``,
what one event-loop step writes is sent together at the end of that step.

Gateways and storage nodes both serve with ``InPlaceBodyProtocol``, which adds that it
can read a request body straight into the app's buffers. Through uvicorn a 1 MiB body costs ~1.7 ms of server CPU
(measured: 64 KiB reads, each parsed, appended, copied again per ``receive`` and flow-
controlled); read in place it is a few ``recv_into`` calls. The app asks for it after
authenticating the request: ``read_body(scope)`` (a node's whole shard) or
``body_reader(scope)`` (a gateway's upload, a piece at a time). Bodies without a length
go through the parser as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httptools
from starlette.requests import ClientDisconnect
from starlette.types import Scope
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

IN_PLACE_MAX = 64 << 20  # largest body read in place (a shard is at most a 4 MiB block)
_EXTENSION = "shoal.read_body"


class _CoalescingTransport:
    """A transport whose writes of one loop step leave in a single ``writelines``."""

    __slots__ = ("_transport", "_loop", "_pending")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        if self._pending is None:
            self._pending = [data]
            self._loop.call_soon(self._flush)
        else:
            self._pending.append(data)

    def _flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending and not self._transport.is_closing():
            self._transport.writelines(pending)

    def close(self) -> None:
        self._flush()  # a response written just before close still goes out first
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's ``http="httptools"`` protocol over a ``_CoalescingTransport``."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]


class InPlaceBodyProtocol(asyncio.BufferedProtocol):
    """A server connection (nodes and gateways): uvicorn's protocol behind a buffered front.

    uvloop hands a protocol buffers to read into only if it is not also an
    ``asyncio.Protocol`` (uvicorn's is), so this front takes uvicorn's arguments, makes
    the HTTP protocol, and passes the connection's events on to it.
    """

    def __init__(self, **uvicorn_args: Any) -> None:
        self._http = _InPlaceHttp(**uvicorn_args)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._http.connection_made(transport)  # type: ignore[arg-type]

    def connection_lost(self, exc: Exception | None) -> None:
        self._http.connection_lost(exc)

    def eof_received(self) -> bool | None:
        return self._http.eof_received()

    def pause_writing(self) -> None:
        self._http.pause_writing()

    def resume_writing(self) -> None:
        self._http.resume_writing()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._http.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> None:
        self._http.buffer_updated(nbytes)


class _InPlaceHttp(CoalescingHttpToolsProtocol):
    """The HTTP side of ``InPlaceBodyProtocol``.

    Bytes reach the httptools parser as before, from a scratch buffer, until the app
    reads the body in place (``read_into``): from then on the kernel reads the body into
    the app's buffers, reading pauses between them, and once the body is complete the
    parser, which was left inside it, is replaced for the connection's next request.
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._scratch = memoryview(bytearray(256 * 1024))
        self._target: memoryview | None = None
        self._filled = 0
        self._done: asyncio.Future[None] | None = None
        self._left = 0  # body bytes not yet read, by the parser or in place

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is None or cycle.scope is not self.scope:  # an upgrade: no new cycle
            return
        length = _content_length(self.scope)
        if length is not None:
            self._left = length
            self.scope.setdefault("extensions", {})[_EXTENSION] = (
                lambda view: self._read_into(cycle, view))

    def on_body(self, body: bytes) -> None:
        self._left -= len(body)
        super().on_body(body)

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._target is not None:
            return self._target[self._filled:]
        return self._scratch

    def buffer_updated(self, nbytes: int) -> None:
        if self._target is None:
            # The parser takes a buffer, and its callbacks hand on bytes they made: no
            # copy of the read is needed first (the scratch is reused for the next one).
            self.data_received(self._scratch[:nbytes])  # type: ignore[arg-type]
            return
        self._filled += nbytes
        self._left -= nbytes
        if self._filled < len(self._target):
            return
        self._target = None
        if self._left:
            self.flow.pause_reading()  # until the app gives the next buffer
        else:
            self.parser = httptools.HttpRequestParser(self)  # the old one is mid-body
            self.cycle.more_body = False
            self.cycle.message_event.set()
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_exception(ClientDisconnect())
        super().connection_lost(exc)

    async def _read_into(self, cycle: Any, view: memoryview) -> int:
        """Fill ``view`` with the next body bytes (fewer only at the body's end); 0 at
        the end."""
        if cycle.waiting_for_100_continue and not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # as receive() would
            cycle.waiting_for_100_continue = False
        if cycle.body:  # what the parser took before the app asked
            n = min(len(view), len(cycle.body))
            view[:n] = cycle.body[:n]
            del cycle.body[:n]
            return n
        if cycle.disconnected:
            raise ClientDisconnect()
        # A request the parser has gone past (a pipelined one follows) is complete.
        if cycle is not self.cycle or not cycle.more_body or not self._left:
            return 0
        if self._target is not None:
            raise RuntimeError("read_into: the previous read has not finished")
        self._target, self._filled = view[:min(len(view), self._left)], 0
        self._done = self.loop.create_future()
        self.flow.resume_reading()
        await self._done
        return self._filled


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value)
        if name == b"transfer-encoding":
            return None
    return None


def body_reader(scope: Scope) -> Callable[[memoryview], Awaitable[int]] | None:
    """``read_into(view) -> n`` for this request's body, or None if this server or
    request cannot read in place (then use ``receive``). ``read_into`` fills the view
    unless the body ends first, and returns 0 at the end. Call it only once the request
    is authenticated, and before anything else reads the body."""
    return scope.get("extensions", {}).get(_EXTENSION)


async def read_body(scope: Scope) -> bytearray | None:
    """The request's whole body read in place, or None if it cannot be (see
    ``body_reader``) or is longer than ``IN_PLACE_MAX``."""
    read_into = body_reader(scope)
    length = _content_length(scope)
    if read_into is None or length is None or length > IN_PLACE_MAX:
        return None
    body = bytearray(length)
    view, got = memoryview(body), 0
    while got < length:
        n = await read_into(view[got:])
        if not n:
            raise ClientDisconnect()  # (the parser saw the message end early: cannot be)
        got += n
    return body
