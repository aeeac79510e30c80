"""Streaming responses of the control plane's HTTP server: chunked bodies from an async
iterator, keep-alive comments in silences, the bound on open streams, hang-ups noticed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import h11
import pytest
import trio

from aspen.api.http import HttpRequest, HttpResponse, HttpServer


async def _ticks(request: HttpRequest) -> HttpResponse:
    async def body() -> AsyncIterator[bytes]:
        yield b"data: one\n\n"
        await trio.sleep(0.35)  # longer than the keep-alive period below
        yield b"data: two\n\n"
        if request.query == "forever":
            await trio.sleep_forever()

    return HttpResponse.streaming(body(), "text/event-stream", keepalive=b": ka\n\n")


async def _broken(_request: HttpRequest) -> HttpResponse:
    async def body() -> AsyncIterator[bytes]:
        yield b"data: one\n\n"
        raise RuntimeError("stream bug")

    return HttpResponse.streaming(body(), "text/event-stream")


async def _ok(_request: HttpRequest) -> HttpResponse:
    return HttpResponse.json({"ok": True})


def _server(max_streams: int = 8) -> HttpServer:
    return HttpServer({("GET", "/ticks"): _ticks, ("GET", "/broken"): _broken,
                       ("GET", "/ok"): _ok}, max_streams=max_streams, keepalive_s=0.1)


async def _open(port: int, path: str) -> tuple[trio.SocketStream, h11.Connection, int, str]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    conn = h11.Connection(h11.CLIENT)
    await stream.send_all(conn.send(h11.Request(method="GET", target=path,
                                                headers=[("host", "x")])))
    await stream.send_all(conn.send(h11.EndOfMessage()))
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(65536))
        elif isinstance(event, h11.Response):
            headers = {k.decode(): v.decode() for k, v in event.headers}
            return stream, conn, event.status_code, headers.get("transfer-encoding", "")


async def _body(stream: trio.SocketStream, conn: h11.Connection) -> list[bytes]:
    chunks = []
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(65536))
        elif isinstance(event, h11.Data):
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            return chunks


async def test_stream_is_chunked_with_keepalives_in_silences() -> None:
    server = _server()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(server.serve, "127.0.0.1", 0)
        port = listeners[0].socket.getsockname()[1]
        with trio.fail_after(5):
            stream, conn, status, encoding = await _open(port, "/ticks")
            assert status == 200 and encoding == "chunked"
            chunks = await _body(stream, conn)
        assert chunks[0] == b"data: one\n\n" and chunks[-1] == b"data: two\n\n"
        assert set(chunks[1:-1]) == {b": ka\n\n"} and len(chunks) >= 4
        await stream.aclose()
        nursery.cancel_scope.cancel()


async def test_streams_are_bounded_and_a_hangup_frees_its_slot() -> None:
    server = _server(max_streams=1)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(server.serve, "127.0.0.1", 0)
        port = listeners[0].socket.getsockname()[1]
        with trio.fail_after(5):
            first, _, status, _ = await _open(port, "/ticks?forever")
            assert status == 200 and server.streams == 1
            second, _, status, _ = await _open(port, "/ticks")
            assert status == 503
            await second.aclose()
            await first.aclose()  # the server sees the hang-up without writing first
            while server.streams:
                await trio.sleep(0.01)
            again, _, status, _ = await _open(port, "/ticks")
            assert status == 200
            await again.aclose()
        nursery.cancel_scope.cancel()


async def test_a_failing_stream_ends_that_stream_only() -> None:
    server = _server()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(server.serve, "127.0.0.1", 0)
        port = listeners[0].socket.getsockname()[1]
        with trio.fail_after(5):
            stream, conn, status, _ = await _open(port, "/broken")
            assert status == 200
            # The body is cut short (no final chunk): the client can tell it failed.
            with pytest.raises(h11.RemoteProtocolError, match="incomplete chunked read"):
                await _body(stream, conn)
            await stream.aclose()
            ok, conn, status, _ = await _open(port, "/ok")
            assert status == 200 and server.streams == 0
            await ok.aclose()
        nursery.cancel_scope.cancel()
