"""cluster/httpserve.py: a response's writes leave together, and nothing is lost or
reordered on close. The inner transport records calls (it stands for the socket); the
end-to-end case runs a real uvicorn server with the protocol on loopback."""

from __future__ import annotations

import asyncio
import socket

import uvicorn

from cluster.httpserve import CoalescingHttpToolsProtocol, _CoalescingTransport


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
