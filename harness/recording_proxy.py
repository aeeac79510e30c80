"""A loopback TCP proxy that records what clients send: the replay tests capture a peer's
bytes off the wire with it (tests/unit/transports: curve, refusals)."""

from __future__ import annotations

import trio


async def recording_proxy(
    target: str, recorded: list[bytes], *, task_status: trio.TaskStatus[int]
) -> None:
    """A loopback TCP proxy to `target` that keeps every byte a client sends through it."""
    host, port = target.rsplit(":", 1)
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    task_status.started(listeners[0].socket.getsockname()[1])

    async def pump(src: trio.SocketStream, dst: trio.SocketStream, keep: bool) -> None:
        try:
            async for chunk in src:
                if keep:
                    recorded.append(bytes(chunk))
                await dst.send_all(chunk)
        except trio.BrokenResourceError:
            pass

    async def handle(client: trio.SocketStream) -> None:
        upstream = await trio.open_tcp_stream(host, int(port))
        async with client, upstream, trio.open_nursery() as pumps:
            pumps.start_soon(pump, client, upstream, True)
            pumps.start_soon(pump, upstream, client, False)

    await trio.serve_listeners(handle, listeners)
