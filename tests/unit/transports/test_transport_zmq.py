"""ZeroMQ-specific behaviour: long runs do not hang, unreachable peers, identity checks, idle."""

from __future__ import annotations

import socket
import time

import cbor2
import pytest
import trio
import trio.testing
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transports import DropReason, TransportConfig
from transports.testing import open_mesh
from transports.zmq_io import close_socket, wait_for
from transports.zmq_transport import open_zmq_transport


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
async def test_100k_messages_both_ways_do_not_hang() -> None:
    """The edge-triggered FD pitfall: long runs, both directions at once, bounded in time."""
    count = 50_000
    async with open_mesh("zmq", 2) as mesh:
        await mesh.warm_up()
        results: dict[int, list[int]] = {1: [], 2: []}

        async def produce(src: int, dst: int) -> None:
            for i in range(count):
                await mesh[src].send(dst, i.to_bytes(4, "big") + b"x" * 96)
                if i % 64 == 0:
                    await trio.lowlevel.checkpoint()  # like a driver loop between batches

        async def consume(node: int, src: int) -> None:
            while len(results[node]) + mesh[src].stats.dropped_total < count:
                with trio.move_on_after(10) as idle:
                    _, payload = await mesh.receive(node)
                    results[node].append(int.from_bytes(payload[:4], "big"))
                if idle.cancelled_caught:
                    return  # stuck: the assertions below say how

        with trio.fail_after(90):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(produce, 1, 2)
                nursery.start_soon(produce, 2, 1)
                nursery.start_soon(consume, 2, 1)
                nursery.start_soon(consume, 1, 2)
        for node, src in ((2, 1), (1, 2)):
            got = results[node]
            assert got == sorted(got)  # per-pair order, whatever was dropped
            assert len(got) == count - mesh[src].stats.dropped_total, (
                node,
                len(got),
                got[-1:],
                mesh[src].stats,
                mesh[node].stats,
            )
            assert len(got) > count // 2  # and a local loopback link is not mostly loss


async def test_unreachable_peer_is_counted_and_recovers() -> None:
    address = f"127.0.0.1:{_free_port()}"
    config = TransportConfig(node_id=1, cluster_id="c", peers={2: address}, send_timeout=0.2)
    async with open_zmq_transport(config) as t:
        with trio.fail_after(1):  # queueing never waits for the peer
            for i in range(5):
                await t.send(2, b"%d" % i)
        with trio.fail_after(5):
            while t.stats.dropped[DropReason.UNREACHABLE] < 5:
                await trio.sleep(0.05)
        assert t.stats.sent == 0
        # The peer comes up on that address: the DEALER connects by itself, delivery starts.
        peer_config = TransportConfig(node_id=2, cluster_id="c", bind=address, peers={1: t.address})
        async with open_zmq_transport(peer_config) as peer:
            with trio.fail_after(10):
                while True:
                    await t.send(2, b"up")
                    with trio.move_on_after(0.1):
                        assert await peer.receive() == (1, b"up")
                        break
            assert t.stats.sent >= 1


async def test_link_identity_must_match_envelope_sender() -> None:
    """A connection whose ZeroMQ identity says node 3 cannot deliver as node 1."""
    async with open_mesh("zmq", 3) as mesh:
        await mesh.warm_up()
        await mesh.stop(3)
        ctx = zmq.Context()
        try:
            sock = ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.IDENTITY, b"3")
            sock.connect(f"tcp://{mesh[2].address}")
            sock.send(cbor2.dumps([1, 0, "test-cluster", 1, b"forged"]))
            sock.send(b"extra", zmq.SNDMORE)  # a three-frame message is malformed too
            sock.send(cbor2.dumps([1, 0, "test-cluster", 3, b"forged"]))
            sock.close(linger=2000)
        finally:
            await trio.to_thread.run_sync(ctx.term)
        with trio.fail_after(5):
            while mesh[2].stats.dropped_total < 2:
                await trio.sleep(0.02)
        assert mesh[2].stats.dropped == {DropReason.SENDER_MISMATCH: 1, DropReason.MALFORMED: 1}


async def test_idle_mesh_does_not_busy_loop() -> None:
    """Idle, a 3-node mesh only wakes on its wait cap: nowhere near a spinning core."""
    async with open_mesh("zmq", 3) as mesh:
        await mesh.warm_up()
        cpu_before, wall_before = time.process_time(), time.monotonic()
        await trio.sleep(2)
        cpu = time.process_time() - cpu_before
        wall = time.monotonic() - wall_before
    assert cpu < 0.25 * wall, f"{cpu:.3f}s CPU in {wall:.3f}s idle"


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="this machine has no ::1")
async def test_ipv6_addresses() -> None:
    async with open_mesh("zmq", 2, bind="[::1]:0") as mesh:
        assert mesh[1].address.startswith("[::1]:")
        await mesh.warm_up()
        with trio.fail_after(5):
            await mesh[1].send(2, b"over v6")
            assert await mesh.receive(2) == (1, b"over v6")


_valid = cbor2.dumps([1, 0, "test-cluster", 3, b"ok"])


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.lists(
            st.binary(max_size=64)
            | st.integers(0, len(_valid)).map(lambda n: _valid[:n])
            | st.just(_valid),
            min_size=1,
            max_size=3,
        ),
        min_size=1,
        max_size=30,
    )
)
async def test_fuzzed_wire_messages_are_each_delivered_or_counted(
    messages: list[list[bytes]],
) -> None:
    """Random multi-frame messages straight onto the ROUTER: each one is either delivered
    or dropped and counted, and the node keeps working."""
    async with open_mesh("zmq", 3) as mesh:
        await mesh.warm_up()
        await mesh.stop(3)
        received_before = mesh[2].stats.received
        before = received_before + mesh[2].stats.dropped_total
        ctx = zmq.Context()
        try:
            sock = ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.IDENTITY, b"3")
            sock.connect(f"tcp://{mesh[2].address}")
            for frames in messages:
                sock.send_multipart(frames)
            sock.close(linger=2000)
        finally:
            await trio.to_thread.run_sync(ctx.term)
        stats = mesh[2].stats
        with trio.fail_after(5):
            while stats.received + stats.dropped_total - before < len(messages):
                await trio.sleep(0.01)
        delivered = [m for m in messages if m == [_valid]]
        assert stats.received + stats.dropped_total - before == len(messages)
        assert stats.received - received_before == len(delivered)
        for _ in delivered:
            with trio.fail_after(5):
                assert await mesh.receive(2) == (3, b"ok")
        with trio.fail_after(5):
            await mesh[1].send(2, b"alive")
            assert await mesh.receive(2) == (1, b"alive")


async def test_closing_a_socket_wakes_the_task_waiting_on_it() -> None:
    ctx = zmq.Context()
    try:
        sock = ctx.socket(zmq.DEALER)
        outcome: list[str] = []

        async def waiter() -> None:
            try:
                await wait_for(sock, zmq.POLLIN)
            except trio.ClosedResourceError:
                outcome.append("woken")

        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(waiter)
                await trio.testing.wait_all_tasks_blocked()
                close_socket(sock)
        assert outcome == ["woken"]
        assert sock.closed
    finally:
        ctx.term()


async def test_non_zmtp_bytes_on_the_port_do_not_kill_the_node() -> None:
    async with open_mesh("zmq", 2) as mesh:
        await mesh.warm_up()
        host, port = mesh[2].address.split(":")
        for blob in [b"GET / HTTP/1.1\r\n\r\n", b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03" * 64]:
            stream = await trio.open_tcp_stream(host, int(port))
            try:
                await stream.send_all(blob)
                with trio.move_on_after(0.2):
                    await stream.receive_some(1000)
            except trio.BrokenResourceError:
                pass
            finally:
                await stream.aclose()
        with trio.fail_after(5):
            await mesh[1].send(2, b"alive")
            assert await mesh.receive(2) == (1, b"alive")
        assert mesh[2].stats.dropped_total == 0
