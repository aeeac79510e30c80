"""Probes for the peer-transport attack tests (tests/unit/transports: curve, refusals): a
loopback TCP proxy that records what clients send (to replay a captured conversation), and
a raw ZeroMQ DEALER that sends chosen frames under a chosen identity and socket options."""

from __future__ import annotations

import trio
import zmq


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


async def raw_dealer(address: str, identity: bytes, frames: list[bytes], *, settle: float = 0.2,
                     **options: bytes) -> None:
    """Connect a bare DEALER as `identity` (zmq socket options by name, e.g. CURVE keys),
    send `frames`, wait `settle` seconds for the handshake and delivery, close."""
    ctx = zmq.Context()
    try:
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.IDENTITY, identity)
        for name, value in options.items():
            sock.setsockopt(getattr(zmq, name), value)
        sock.connect(f"tcp://{address}")
        for data in frames:
            sock.send(data)
        if settle:
            await trio.sleep(settle)
        sock.close(linger=1000)
    finally:
        await trio.to_thread.run_sync(ctx.term)
