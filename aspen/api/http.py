"""A small HTTP/1.1 server on trio + h11 for the control plane.

The control plane moves a few small JSON documents (health, metrics, membership changes), so a
route table over h11 is all it needs; a web framework would be the largest dependency of the node.
Each connection is one task; keep-alive is honoured; bodies are size-capped before they are read.

A response may instead stream (`HttpResponse.streaming`): a chunked body from an async iterator
(the console's Server-Sent Events), with `keepalive` bytes written whenever the iterator is quiet
for `keepalive_s` seconds, so proxies keep the connection and a vanished client is noticed on
the next write. Streams hold a connection each, so a server serves at most `max_streams` at once
(503 beyond that); the connection closes when the stream ends.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import attrs
import h11
import trio

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20
READ_TIMEOUT_S = 30.0
READ_CHUNK = 65536
MAX_STREAMS = 8
KEEPALIVE_S = 5.0


@attrs.frozen
class HttpRequest:
    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON; an empty body reads as an empty object."""
        if not self.body.strip():
            return {}
        try:
            return json.loads(self.body)
        except UnicodeDecodeError:  # (a ValueError, not a JSONDecodeError: it would be a 500)
            raise BadRequest("body is not valid JSON: not UTF-8 text") from None


@attrs.frozen
class HttpResponse:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    stream: AsyncIterator[bytes] | None = None
    keepalive: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def streaming(
        cls, stream: AsyncIterator[bytes], content_type: str, keepalive: bytes = b""
    ) -> HttpResponse:
        return cls(200, b"", content_type, stream, keepalive, (("cache-control", "no-store"),))

    @classmethod
    def json(cls, value: Any, status: int = 200) -> HttpResponse:
        return cls(status, json.dumps(value, sort_keys=True).encode() + b"\n")

    @classmethod
    def error(cls, status: int, message: str) -> HttpResponse:
        return cls.json({"error": message}, status)

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain") -> HttpResponse:
        return cls(status, text.encode(), content_type)


Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]


class BadRequest(Exception):
    """Raised by a handler for a client mistake; becomes a 400 with the message."""


class HttpServer:
    """Routes `(METHOD, path)` to async handlers; unknown paths 404, wrong methods 405."""

    def __init__(
        self, routes: Mapping[tuple[str, str], Handler], *, max_streams: int = MAX_STREAMS,
        keepalive_s: float = KEEPALIVE_S,
    ) -> None:
        self._routes = dict(routes)
        self._paths = {path for _, path in self._routes}
        self.max_streams = max_streams
        self.keepalive_s = keepalive_s
        self.streams = 0

    async def serve(
        self,
        host: str,
        port: int,
        *,
        task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        listeners = await trio.open_tcp_listeners(port, host=host)
        task_status.started(listeners)
        await trio.serve_listeners(self.handle_connection, listeners)

    async def handle_connection(self, stream: trio.abc.Stream) -> None:
        """Serve one connection. Nothing may escape: the node runs this under
        trio.serve_listeners, where an exception would end the node."""
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request = await self._read_request(conn, stream)
                if request is None:
                    return
                response = await self._dispatch(request)
                if response.stream is not None:
                    await self._send_stream(conn, stream, response)
                    return
                await self._send_response(conn, stream, response, request.method == "HEAD")
                if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (h11.RemoteProtocolError, _BodyTooLarge) as exc:
            status = 413 if isinstance(exc, _BodyTooLarge) else 400
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                # Best effort: the peer may already be gone.
                with trio.move_on_after(1), contextlib.suppress(
                    h11.LocalProtocolError, trio.BrokenResourceError, trio.ClosedResourceError
                ):
                    await self._send_response(
                        conn, stream, HttpResponse.error(status, str(exc) or "bad request"),
                        _is_head(conn),
                    )
        except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError):
            pass
        except Exception:  # a bug costs this connection, never the node
            log.exception("control-plane connection failed")
        finally:
            await trio.aclose_forcefully(stream)

    async def _read_request(
        self, conn: h11.Connection, stream: trio.abc.Stream
    ) -> HttpRequest | None:
        head: h11.Request | None = None
        body = bytearray()
        with trio.fail_after(READ_TIMEOUT_S):
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await stream.receive_some(READ_CHUNK)
                    conn.receive_data(bytes(data))
                    if not data and conn.their_state is h11.IDLE:
                        return None
                    continue
                if isinstance(event, h11.ConnectionClosed):
                    return None
                if isinstance(event, h11.Request):
                    head = event
                    length = _content_length(event)
                    if length is not None and length > MAX_BODY_BYTES:
                        raise _BodyTooLarge(f"body larger than {MAX_BODY_BYTES} bytes")
                elif isinstance(event, h11.Data):
                    body += event.data
                    if len(body) > MAX_BODY_BYTES:
                        raise _BodyTooLarge(f"body larger than {MAX_BODY_BYTES} bytes")
                elif isinstance(event, h11.EndOfMessage):
                    assert head is not None
                    target = head.target.decode("latin-1")
                    path, _, query = target.partition("?")
                    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in head.headers}
                    return HttpRequest(
                        head.method.decode("latin-1"), path, query, headers, bytes(body)
                    )

    async def _dispatch(self, request: HttpRequest) -> HttpResponse:
        handler = self._routes.get((request.method, request.path))
        if handler is None:
            if request.path in self._paths:
                return HttpResponse.error(405, f"method {request.method} not allowed")
            return HttpResponse.error(404, f"no such endpoint: {request.path}")
        try:
            return await handler(request)
        except BadRequest as exc:
            return HttpResponse.error(400, str(exc))
        except json.JSONDecodeError as exc:
            return HttpResponse.error(400, f"body is not valid JSON: {exc}")
        except Exception:
            log.exception("control-plane handler %s %s failed", request.method, request.path)
            return HttpResponse.error(500, "internal error; see the node's log")

    async def _send_response(
        self, conn: h11.Connection, stream: trio.abc.Stream, response: HttpResponse,
        head: bool = False,
    ) -> None:
        """Send `response`; to a HEAD request, its headers only (h11 refuses a body)."""
        headers = [
            ("content-type", response.content_type),
            ("content-length", str(len(response.body))),
            *response.headers,
        ]
        out = conn.send(h11.Response(status_code=response.status, headers=headers))
        if not head:
            out = (out or b"") + (conn.send(h11.Data(data=response.body)) or b"")
        out += conn.send(h11.EndOfMessage()) or b""
        await stream.send_all(out)


    async def _send_stream(
        self, conn: h11.Connection, stream: trio.abc.Stream, response: HttpResponse
    ) -> None:
        """Chunked: each item of the iterator is one chunk; keep-alive bytes fill silences."""
        body = response.stream
        assert body is not None
        if self.streams >= self.max_streams:
            await self._send_response(conn, stream, HttpResponse.error(
                503, f"too many open streams (at most {self.max_streams} per node)"))
            await _aclose(body)
            return
        self.streams += 1
        try:
            head = h11.Response(status_code=response.status, headers=[
                ("content-type", response.content_type), *response.headers])
            await stream.send_all(conn.send(head) or b"")
            send, receive = trio.open_memory_channel[bytes](0)
            async with trio.open_nursery() as nursery:

                async def produce() -> None:
                    async for chunk in body:
                        await send.send(chunk)
                    await send.aclose()  # (only a complete body ends with the final chunk)

                async def watch_peer() -> None:
                    # A client that hangs up mid-stream is seen here at once (EOF), not
                    # only at the next write.
                    while await stream.receive_some(READ_CHUNK):
                        pass
                    nursery.cancel_scope.cancel()

                nursery.start_soon(produce)
                nursery.start_soon(watch_peer)
                while True:
                    chunk = None
                    with trio.move_on_after(self.keepalive_s):
                        try:
                            chunk = await receive.receive()
                        except trio.EndOfChannel:
                            break
                    data = chunk if chunk is not None else response.keepalive
                    if data:
                        await stream.send_all(conn.send(h11.Data(data=data)) or b"")
                await stream.send_all(conn.send(h11.EndOfMessage()) or b"")
                nursery.cancel_scope.cancel()
        except* (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client left
        except* Exception:  # a bug in a stream costs that stream (cut short), not the server
            log.exception("control-plane stream failed")
        finally:
            self.streams -= 1
            await _aclose(body)


async def _aclose(body: AsyncIterator[bytes]) -> None:
    close = getattr(body, "aclose", None)
    if close is not None:
        with trio.CancelScope(shield=True):
            await close()


class _BodyTooLarge(Exception):
    pass


def _is_head(conn: h11.Connection) -> bool:
    """Was the request being answered a HEAD (when only h11 saw it: a malformed one)?"""
    return getattr(conn, "_request_method", None) == b"HEAD"


def _content_length(request: h11.Request) -> int | None:
    for name, value in request.headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
