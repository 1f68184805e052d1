"""cluster.httppool against a real TCP server on loopback whose behaviour each test picks:
keep-alive reuse, idle connections the server closed, cut and garbled answers, cancelled
and hung calls, refused connections."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from cluster.httppool import ConnectionLost, HttpPool

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


def ok(body: bytes, extra: str = "") -> bytes:
    return (f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nX-Test: yes\r\n{extra}\r\n"
            ).encode() + body


async def read_request(reader: asyncio.StreamReader) -> tuple[str, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    length = next(int(v) for k, _, v in (h.partition(": ") for h in lines[1:] if h)
                  if k.lower() == "content-length")
    return lines[0], await reader.readexactly(length)


class Server:
    """Counts connections and requests; ``handle(reader, writer, request_number)``."""

    def __init__(self, handle: Handler) -> None:
        self.handle = handle
        self.connections = 0
        self.requests = 0

    async def __aenter__(self) -> str:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                while True:
                    self.requests += 1
                    await self.handle(reader, writer, self.requests)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
    line, body = await read_request(reader)
    writer.write(ok(line.encode() + b"|" + body))
    await writer.drain()


def test_keep_alive_reuses_one_connection_and_returns_headers_and_body() -> None:
    async def main() -> None:
        server = Server(echo)
        async with server as url:
            pool = HttpPool()
            big = bytes(range(256)) * 4096  # 1 MiB in and out
            status, headers, body = await pool.request(url, "PUT", "/shards/a.0?x=1",
                                                       lambda: {"x-sig": "abc"}, big)
            assert status == 200 and headers["x-test"] == "yes"
            assert body == b"PUT /shards/a.0?x=1 HTTP/1.1|" + big
            for _ in range(3):
                assert (await pool.request(url, "GET", "/health", dict))[2].startswith(b"GET")
            assert server.connections == 1
            pool.close()

    asyncio.run(main())


def test_idle_connection_closed_by_the_server_is_retried_on_a_fresh_one() -> None:
    """The retry goes out on a new connection with freshly made headers (a node refuses
    a replayed nonce)."""
    async def close_second(reader, writer, n) -> None:  # type: ignore[no-untyped-def]
        head = await reader.readuntil(b"\r\n\r\n")
        if n == 2:  # the node's keep-alive timeout fired just as the request went out
            raise ConnectionError
        nonce = next(h for h in head.decode().split("\r\n") if h.startswith("x-nonce"))
        writer.write(ok(nonce.encode()))
        await writer.drain()

    async def main() -> None:
        server, made = Server(close_second), iter(range(1, 10))
        async with server as url:
            pool = HttpPool()

            def headers() -> dict[str, str]:
                return {"x-nonce": str(next(made))}

            assert (await pool.request(url, "GET", "/a", headers))[2] == b"x-nonce: 1"
            assert (await pool.request(url, "GET", "/b", headers))[2] == b"x-nonce: 3"
            assert server.connections == 2
            pool.close()

    asyncio.run(main())


def test_answer_cut_midway_is_connection_lost_and_not_retried() -> None:
    async def cut(reader, writer, n) -> None:  # type: ignore[no-untyped-def]
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        await writer.drain()
        raise ConnectionError

    async def main() -> None:
        server = Server(cut)
        async with server as url:
            pool = HttpPool()
            with pytest.raises(ConnectionLost) as err:
                await pool.request(url, "GET", "/a", dict)
            assert err.value.started and server.requests == 1
            pool.close()

    asyncio.run(main())


def test_large_bodies_read_in_place_in_any_pieces_then_the_connection_is_reused() -> None:
    """A body of DIRECT_MIN or more is read into its own buffer: whether it comes with
    the head, trickles in small writes or ends early (ConnectionLost), and a small answer
    on the same connection afterwards is still parsed from the start."""
    big = bytes(range(256)) * 1024 + b"tail"  # 256 KiB + 4

    async def pieces(reader, writer, n) -> None:  # type: ignore[no-untyped-def]
        while True:
            line = (await read_request(reader))[0]
            if line.startswith("GET /small"):
                writer.write(ok(b"small"))
            elif line.startswith("GET /cut"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(big)
                             + big[:200_000])
                await writer.drain()
                raise ConnectionError
            else:
                answer = ok(big)
                step = 7_000 if line.startswith("GET /trickle") else len(answer)
                for at in range(0, len(answer), step):
                    writer.write(answer[at:at + step])
                    await writer.drain()
                    await asyncio.sleep(0)

    async def main() -> None:
        server = Server(pieces)
        async with server as url:
            pool = HttpPool()
            for path in ("/whole", "/trickle", "/small", "/trickle", "/small"):
                status, _, body = await pool.request(url, "GET", path, dict)
                assert status == 200 and body == (b"small" if path == "/small" else big)
            assert server.connections == 1
            with pytest.raises(ConnectionLost) as err:
                await pool.request(url, "GET", "/cut", dict)
            assert err.value.started
            pool.close()

    asyncio.run(main())


def test_garbage_answer_is_connection_lost() -> None:
    async def garbage(reader, writer, n) -> None:  # type: ignore[no-untyped-def]
        await read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(1)

    async def main() -> None:
        async with Server(garbage) as url:
            with pytest.raises(ConnectionLost):
                await HttpPool().request(url, "GET", "/a", dict)

    asyncio.run(main())


def test_cancelled_call_never_hands_its_late_answer_to_the_next_call() -> None:
    async def slow_first(reader, writer, n) -> None:  # type: ignore[no-untyped-def]
        line, _ = await read_request(reader)
        if n == 1:
            await asyncio.sleep(0.3)
        writer.write(ok(line.encode()))
        await writer.drain()

    async def main() -> None:
        server = Server(slow_first)
        async with server as url:
            pool = HttpPool()
            first = asyncio.ensure_future(pool.request(url, "GET", "/first", dict))
            await asyncio.sleep(0.1)
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first
            body = (await pool.request(url, "GET", "/second", dict))[2]
            assert body == b"GET /second HTTP/1.1"
            assert server.connections == 2
            pool.close()

    asyncio.run(main())


def test_hung_server_times_out_and_refused_is_oserror() -> None:
    async def hang(reader, writer, n) -> None:  # type: ignore[no-untyped-def]
        await read_request(reader)
        await asyncio.sleep(10)

    async def main() -> None:
        async with Server(hang) as url:
            with pytest.raises(TimeoutError):
                await HttpPool(timeout=0.3).request(url, "GET", "/a", dict)
        with pytest.raises(OSError):
            await HttpPool().request(url, "GET", "/a", dict)  # the server is gone

    asyncio.run(main())


def test_chunked_answer_is_decoded_and_bad_targets_are_refused() -> None:
    async def chunked(reader, writer, n) -> None:  # type: ignore[no-untyped-def]
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        await writer.drain()

    async def main() -> None:
        async with Server(chunked) as url:
            pool = HttpPool()
            assert (await pool.request(url, "GET", "/a", dict))[2] == b"abcde"
            with pytest.raises(ValueError):
                await pool.request(url, "GET", "/a b\r\nX: y", dict)
            with pytest.raises(ValueError):
                await pool.request(url + "/prefix", "GET", "/a", dict)
            pool.close()

    asyncio.run(main())
