"""uvicorn's httptools protocol, with a response's writes leaving in one syscall.

uvicorn writes a response's status line and headers in one ``transport.write`` and its
body in another, and uvloop sends each at once: two ``send`` calls per response, and two
wake-ups and reads on the other side. On loopback a send runs the receiver's TCP stack
inline, so each costs ~0.1-0.15 ms of CPU on this VM, and every S3 operation answers
the client once and makes several node requests. Gateways and storage nodes both serve
with ``CoalescingHttpToolsProtocol``: what one event-loop step writes is sent together at
the end of that step.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


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
