"""The control plane's HTTP server: routing, JSON, limits, keep-alive, failure isolation."""

from __future__ import annotations

import json

import h11
import trio

from aspen.api.http import MAX_BODY_BYTES, BadRequest, HttpRequest, HttpResponse, HttpServer


async def _echo(request: HttpRequest) -> HttpResponse:
    return HttpResponse.json({"method": request.method, "query": request.query,
                              "body": request.json()})


async def _boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("handler bug")


async def _bad(request: HttpRequest) -> HttpResponse:
    raise BadRequest("node id must be an integer")


ROUTES = {
    ("GET", "/echo"): _echo,
    ("POST", "/echo"): _echo,
    ("GET", "/boom"): _boom,
    ("POST", "/bad"): _bad,
}


async def _start(nursery: trio.Nursery) -> int:
    listeners = await nursery.start(HttpServer(ROUTES).serve, "127.0.0.1", 0)
    return int(listeners[0].socket.getsockname()[1])


async def _exchange(
    stream: trio.SocketStream, conn: h11.Connection, method: str, path: str, body: bytes = b""
) -> tuple[int, bytes]:
    headers = [("host", "x"), ("content-length", str(len(body)))]
    data = conn.send(h11.Request(method=method, target=path, headers=headers))
    data += conn.send(h11.Data(data=body)) if body else b""
    data += conn.send(h11.EndOfMessage())
    await stream.send_all(data)
    status = 0
    out = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(65536))
        elif isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            out += event.data
        elif isinstance(event, h11.EndOfMessage):
            return status, bytes(out)


async def _request(port: int, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            return await _exchange(stream, h11.Connection(h11.CLIENT), method, path, body)


async def test_routes_json_and_errors() -> None:
    async with trio.open_nursery() as nursery:
        port = await _start(nursery)
        status, body = await _request(port, "POST", "/echo?x=1", b'{"a": [1, 2]}')
        assert status == 200
        assert json.loads(body) == {"method": "POST", "query": "x=1", "body": {"a": [1, 2]}}
        assert (await _request(port, "GET", "/nope"))[0] == 404
        assert (await _request(port, "DELETE", "/echo"))[0] == 405
        status, body = await _request(port, "POST", "/echo", b"{not json")
        assert status == 400 and b"not valid JSON" in body
        status, body = await _request(port, "POST", "/bad")
        assert status == 400 and json.loads(body) == {"error": "node id must be an integer"}
        nursery.cancel_scope.cancel()


async def test_handler_crash_is_a_500_and_the_server_keeps_serving() -> None:
    async with trio.open_nursery() as nursery:
        port = await _start(nursery)
        assert (await _request(port, "GET", "/boom"))[0] == 500
        assert (await _request(port, "GET", "/echo"))[0] == 200
        nursery.cancel_scope.cancel()


async def test_keep_alive_serves_several_requests_on_one_connection() -> None:
    async with trio.open_nursery() as nursery:
        port = await _start(nursery)
        with trio.fail_after(5):
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            conn = h11.Connection(h11.CLIENT)
            for i in range(3):
                status, body = await _exchange(stream, conn, "POST", "/echo", b'{"i": %d}' % i)
                assert status == 200 and json.loads(body)["body"] == {"i": i}
                conn.start_next_cycle()
            await stream.aclose()
        nursery.cancel_scope.cancel()


async def test_oversized_body_is_refused_before_it_is_read() -> None:
    async with trio.open_nursery() as nursery:
        port = await _start(nursery)
        with trio.fail_after(5):
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            head = (b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n"
                    % (MAX_BODY_BYTES + 1))
            await stream.send_all(head)
            reply = await stream.receive_some(65536)
            assert reply.startswith(b"HTTP/1.1 413")
            await stream.aclose()
        nursery.cancel_scope.cancel()


async def test_garbage_gets_400_and_close() -> None:
    async with trio.open_nursery() as nursery:
        port = await _start(nursery)
        with trio.fail_after(5):
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            await stream.send_all(b"\x00\x01 not http at all\r\n\r\n")
            reply = b""
            while chunk := await stream.receive_some(65536):
                reply += chunk
            assert reply.startswith(b"HTTP/1.1 400")
        nursery.cancel_scope.cancel()
