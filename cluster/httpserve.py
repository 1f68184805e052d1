"""uvicorn's httptools protocol, with a response's writes leaving in one syscall.

uvicorn writes a response's status line and headers in one ``transport.write`` and its
body in another, and uvloop sends each at once: two ``send`` calls per response, and two
wake-ups and reads on the other side. On loopback a send runs the receiver's TCP stack
inline, so each costs ~0.1-0.15 ms of CPU on this VM, and every S3 operation answers
the client once and makes several node requests. Gateways and storage nodes both serve
with ``CoalescingHttpToolsProtocol``: what one event-loop step writes is sent together at
the end of that step.

Storage nodes serve with ``InPlaceBodyProtocol``, which can also read a request body
straight into one buffer. Through uvicorn a 1 MiB body costs ~1.7 ms of server CPU
(measured: 64 KiB reads, each parsed, appended, copied again per ``receive`` and flow-
controlled); read in place it is a few ``recv_into`` calls. The app asks for it, after
authenticating the request, through ``read_body(scope)``; bodies without a length, or
longer than ``IN_PLACE_MAX``, go through the parser as before.
"""

from __future__ import annotations

import asyncio
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
    """A storage node's connection: uvicorn's protocol behind a buffered front.

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
    calls ``read_body``: then the rest of the body is read by the kernel into a buffer
    of the announced length, and the parser, which was inside that body, is replaced by
    a fresh one for the connection's next request.
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._scratch = memoryview(bytearray(256 * 1024))
        self._target: memoryview | None = None
        self._filled = 0
        self._done: asyncio.Future[None] | None = None

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.scope is self.scope:  # (not for an upgrade)
            self.scope.setdefault("extensions", {})[_EXTENSION] = lambda: self._read_body(cycle)

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._target is not None:
            return self._target[self._filled:]
        return self._scratch

    def buffer_updated(self, nbytes: int) -> None:
        if self._target is None:
            self.data_received(bytes(self._scratch[:nbytes]))
            return
        self._filled += nbytes
        if self._filled == len(self._target):
            self._target = None
            self.parser = httptools.HttpRequestParser(self)  # the old one is mid-body
            self.cycle.more_body = False
            self.cycle.message_event.set()
            if self._done is not None and not self._done.done():
                self._done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_exception(ClientDisconnect())
        super().connection_lost(exc)

    async def _read_body(self, cycle: Any) -> bytes | bytearray | None:
        """The whole body, or None when it cannot be read in place (the caller reads
        it the usual way)."""
        length = _content_length(cycle.scope)
        if cycle is not self.cycle or length is None or length > IN_PLACE_MAX:
            return None
        if cycle.disconnected:
            raise ClientDisconnect()
        if not cycle.more_body:  # the parser already has all of it
            body, cycle.body = cycle.body, bytearray()
            return body
        body = bytearray(length)
        got = len(cycle.body)
        body[:got] = cycle.body
        cycle.body = bytearray()
        self._target, self._filled = memoryview(body), got
        self._done = self.loop.create_future()
        self.flow.resume_reading()
        await self._done
        return body


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value)
        if name == b"transfer-encoding":
            return None
    return None


async def read_body(scope: Scope) -> bytes | bytearray | None:
    """The request's whole body read in place, or None if this server or request cannot
    (then read it through ``receive``). Call it before anything else reads the body."""
    reader = scope.get("extensions", {}).get(_EXTENSION)
    return None if reader is None else await reader()
