"""cluster/httpserve.py: a response's writes leave together, and nothing is lost or
reordered on close; request bodies read in place arrive whole and leave the connection
ready for its next request. The inner transport records calls (it stands for the
socket); the end-to-end cases run a real uvicorn server with the protocol on loopback."""

from __future__ import annotations

import asyncio
import os
import socket

import blake3
import uvicorn
import uvloop
from starlette.requests import ClientDisconnect

from cluster import httpserve
from cluster.httpserve import CoalescingHttpToolsProtocol, InPlaceBodyProtocol, _CoalescingTransport


class RecordingTransport:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[bytes]]] = []
        self.closing = False

    def writelines(self, data: list[bytes]) -> None:
        self.calls.append(("writelines", list(data)))

    def close(self) -> None:
        self.calls.append(("close", []))
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def test_writes_of_one_step_leave_in_one_call_in_order() -> None:
    async def main() -> list:
        inner = RecordingTransport()
        t = _CoalescingTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
        t.write(b"HTTP/1.1 200 OK\r\n\r\n")
        t.write(b"body")
        assert inner.calls == []  # not yet: the step is not over
        await asyncio.sleep(0)
        t.write(b"next")
        await asyncio.sleep(0)
        assert t.get_extra_info("peername") == "info:peername"  # the rest is delegated
        return inner.calls

    assert asyncio.run(main()) == [("writelines", [b"HTTP/1.1 200 OK\r\n\r\n", b"body"]),
                                   ("writelines", [b"next"])]


def test_close_sends_pending_writes_first_and_nothing_after() -> None:
    async def main() -> list:
        inner = RecordingTransport()
        t = _CoalescingTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
        t.write(b"last answer")
        t.close()
        await asyncio.sleep(0)  # the scheduled flush finds nothing left to send
        return inner.calls

    assert asyncio.run(main()) == [("writelines", [b"last answer"]), ("close", [])]


async def _app(scope: dict, receive: object, send: object) -> None:
    assert scope["type"] == "http"
    close = scope["path"] == "/close"
    headers = [(b"content-length", b"10")] + ([(b"connection", b"close")] if close else [])
    await send({"type": "http.response.start", "status": 200, "headers": headers})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": b"01234", "more_body": True})  # type: ignore[operator]
    await asyncio.sleep(0.01)  # the second half in a later loop step
    await send({"type": "http.response.body", "body": b"56789"})  # type: ignore[operator]


def test_real_server_answers_whole_responses_kept_alive_and_closed() -> None:
    async def main() -> list[bytes]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(_app, host="127.0.0.1", port=port,
                                               http=CoalescingHttpToolsProtocol,
                                               log_level="warning", lifespan="off"))
        task = asyncio.ensure_future(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            got = []
            for path in ("/keep", "/keep", "/close"):
                writer.write(f"GET {path} HTTP/1.1\r\nhost: x\r\n\r\n".encode())
                head = await reader.readuntil(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200 OK\r\n"), head
                got.append(await reader.readexactly(10))
            assert await reader.read() == b""  # closed after the last answer, nothing more
            writer.close()
            return got
        finally:
            server.should_exit = True
            await task

    assert asyncio.run(main()) == [b"0123456789"] * 3


async def _echo(scope: dict, receive, send, seen: list) -> None:  # noqa: ANN001
    """Answers "<how>:<length>:<blake3>" of the body: "inplace" or "parser"."""
    try:
        if scope["path"] == "/stream":  # a piece at a time, as a gateway reads uploads
            body = bytearray()
            read_into = httpserve.body_reader(scope)
            piece = memoryview(bytearray(100_000))
            while n := await read_into(piece):  # type: ignore[misc]
                body += piece[:n]
        else:
            body = await httpserve.read_body(scope)
    except ClientDisconnect:
        seen.append("disconnect")
        return
    how = "inplace"
    if body is None:
        how, parts, more = "parser", [], True
        while more:
            message = await receive()
            parts.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(parts)
    seen.append(how)
    answer = f"{how}:{len(body)}:{blake3.blake3(body).hexdigest()}".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(answer)).encode())]})
    await send({"type": "http.response.body", "body": answer})


def _expect(how: str, body: bytes) -> bytes:
    return f"{how}:{len(body)}:{blake3.blake3(body).hexdigest()}".encode()


async def _ask(reader, writer, head: bytes, body: bytes, pieces: int = 1) -> bytes:  # noqa: ANN001
    writer.write(head)
    step = -(-len(body) // pieces) if body else 1
    for i in range(0, len(body), step):
        writer.write(body[i:i + step])
        await writer.drain()
        if pieces > 1:
            await asyncio.sleep(0.002)  # arrives in many reads
    return await _answer(reader)


async def _answer(reader) -> bytes:  # noqa: ANN001
    answer_head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    length = int(answer_head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return await asyncio.wait_for(reader.readexactly(length), 10)


def test_bodies_read_in_place_whole_trickled_small_or_not_at_all(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(httpserve, "IN_PLACE_MAX", 2 << 20)
    seen: list[str] = []

    async def main() -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(
            lambda sc, r, se: _echo(sc, r, se, seen), host="127.0.0.1", port=port,
            http=InPlaceBodyProtocol, interface="asgi3", log_level="warning", lifespan="off",
            timeout_graceful_shutdown=2))  # a failed check must not hang on open connections
        task = asyncio.ensure_future(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)

            def put(n: int) -> bytes:
                return f"PUT /x HTTP/1.1\r\nhost: x\r\ncontent-length: {n}\r\n\r\n".encode()

            big, trickled, small, huge = (os.urandom(n) for n in (1 << 20, 300_000, 10, 3 << 20))
            assert await _ask(reader, writer, put(len(big)), big) == _expect("inplace", big)
            assert await _ask(reader, writer, put(len(trickled)), trickled, pieces=43) == (
                _expect("inplace", trickled))
            assert await _ask(reader, writer, put(len(small)), small) == _expect("inplace", small)
            assert await _ask(reader, writer, put(len(huge)), huge) == _expect("parser", huge)
            chunked = (b"PUT /x HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
                       b"5\r\nhello\r\n0\r\n\r\n")
            assert await _ask(reader, writer, chunked, b"") == _expect("parser", b"hello")
            assert await _ask(reader, writer, put(0), b"") == _expect("inplace", b"")
            assert await _ask(reader, writer, put(len(big)), big) == _expect("inplace", big)
            streamed = put(len(big)).replace(b"/x", b"/stream")
            assert await _ask(reader, writer, streamed, big, pieces=7) == _expect("inplace", big)
            # A client that waits for "100 Continue" before it sends the body (aiohttp).
            writer.write(streamed.replace(b"\r\n\r\n", b"\r\nexpect: 100-continue\r\n\r\n"))
            assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10) == (
                b"HTTP/1.1 100 Continue\r\n\r\n")
            writer.write(big)
            assert await _answer(reader) == _expect("inplace", big)
            # Pipelined: the parser has gone past the first request before its app reads.
            writer.write(put(len(small)) + small + put(len(small)) + small[::-1])
            for body in (small, small[::-1]):
                assert await _answer(reader) == _expect("inplace", body)
            writer.close()

            # Cut short: the reader learns the client left; the server serves on.
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(put(len(big)) + big[:400_000])
            await writer.drain()
            await asyncio.sleep(0.1)
            writer.close()
            for _ in range(100):
                if seen[-1] == "disconnect":
                    break
                await asyncio.sleep(0.01)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert await _ask(reader, writer, put(len(small)), small) == _expect("inplace", small)
            writer.close()
        finally:
            server.should_exit = True
            await task

    uvloop.run(main())  # the loop nodes run: it reads into buffers only for some protocols
    assert seen == ["inplace", "inplace", "inplace", "parser", "parser", "inplace", "inplace",
                    "inplace", "inplace", "inplace", "inplace", "disconnect", "inplace"]
