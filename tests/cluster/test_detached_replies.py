"""A write's reply sent by the apply loop itself (a detached reply, `_Batch.run`): replies
keep request order when more commands arrive while it is owed, a client that leaves lets go
of its write, and a shutdown still delivers a reply that is owed."""

from __future__ import annotations

from typing import Any

import trio

from aspen.cluster import ClusterNode
from aspen.kv.session import Session
from aspen.resp.server import Connection, RespServer, ServerOptions
from harness.cluster import InProcessCluster, _Context, open_cluster
from harness.resp_wire import command as _command


async def _read_until(stream: trio.SocketStream, expected: bytes) -> bytes:
    data = b""
    while len(data) < len(expected):
        chunk = await stream.receive_some(65536)
        if not chunk:
            break
        data += chunk
    return data


async def _serve(
    cluster: InProcessCluster, node_id: int, nursery: trio.Nursery, **options: Any
) -> tuple[RespServer, int]:
    node = cluster.nodes[node_id]

    def factory(conn: Connection) -> Any:
        return node.connection_handler(Session(conn.client_id, _Context(node, cluster.clock_ms)))

    server = RespServer(factory, ServerOptions(**options))
    listeners = await nursery.start(server.serve, "127.0.0.1", 0)
    return server, int(listeners[0].socket.getsockname()[1])


async def test_commands_arriving_while_a_reply_is_owed_answer_in_order() -> None:
    async with open_cluster(3, seed=51, tick_interval=0.05) as cluster:
        leader = await cluster.wait_leader()
        port = await cluster.serve_resp(leader.id)
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            with trio.fail_after(20):
                for round_ in range(20):
                    key = b"k%d" % round_
                    # Each part is its own send: the SET's reply is usually still owed
                    # (detached) when the next part arrives, half a command included.
                    get = _command(b"GET", key)
                    await stream.send_all(_command(b"SET", key, b"v%d" % round_))
                    await stream.send_all(_command(b"INCR", b"n") + get[:7])
                    await trio.sleep(0)
                    await stream.send_all(get[7:])
                    await stream.send_all(_command(b"SET", key, b"w"))
                    value = b"v%d" % round_
                    expected = (
                        b"+OK\r\n:%d\r\n$%d\r\n%s\r\n+OK\r\n"
                        % (round_ + 1, len(value), value)
                    )
                    assert await _read_until(stream, expected) == expected


async def test_a_client_that_leaves_while_its_reply_is_owed_lets_go_of_its_write() -> None:
    async with open_cluster(3, seed=52, tick_interval=0.05, request_timeout=30.0) as cluster:
        leader = await cluster.wait_leader()
        for node_id in [n.id for n in cluster.running() if n.id != leader.id]:
            await cluster.stop(node_id)  # no quorum: the write stays owed
        port = await cluster.serve_resp(leader.id)
        with trio.fail_after(10):
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            await stream.send_all(_command(b"SET", b"k", b"v"))
            while not leader.writes.pending:
                await trio.sleep(0.01)
            await stream.aclose()
            while leader.writes.pending:  # forgotten by the connection, long before its deadline
                await trio.sleep(0.01)


async def _leader_without_quorum(cluster: InProcessCluster) -> ClusterNode:
    """The leader with both followers stopped: its writes wait until their deadline."""
    leader = await cluster.wait_leader()
    for node_id in [n.id for n in cluster.running() if n.id != leader.id]:
        await cluster.stop(node_id)
    return leader


async def test_a_shutdown_still_sends_a_reply_that_is_owed() -> None:
    async with open_cluster(3, seed=53, tick_interval=0.05, request_timeout=1.0) as cluster:
        leader = await _leader_without_quorum(cluster)
        async with trio.open_nursery() as nursery:
            server, port = await _serve(cluster, leader.id, nursery, drain_idle=0.05)
            with trio.fail_after(10):
                stream = await trio.open_tcp_stream("127.0.0.1", port)
                await stream.send_all(_command(b"SET", b"k", b"v"))
                while not leader.writes.pending:
                    await trio.sleep(0.01)
                server.shutdown()  # the connection is idle in recv(), its reply owed
                data = b""
                while chunk := await stream.receive_some(65536):
                    data += chunk
                # The write's deadline passed without a quorum: its outcome is unknown.
                assert data.startswith(b"-TIMEOUT"), data


async def test_waiting_for_a_write_is_not_idle_time() -> None:
    """With an idle timeout, a client whose write takes longer than it is not dropped: the
    reply is awaited (not detached), and the connection serves the next command."""
    async with open_cluster(3, seed=54, tick_interval=0.05, request_timeout=1.0) as cluster:
        leader = await _leader_without_quorum(cluster)
        async with trio.open_nursery() as nursery:
            server, port = await _serve(cluster, leader.id, nursery, idle_timeout=0.3)
            with trio.fail_after(10):
                stream = await trio.open_tcp_stream("127.0.0.1", port)
                await stream.send_all(_command(b"SET", b"k", b"v"))
                first = await stream.receive_some(65536)
                assert first.startswith(b"-TIMEOUT"), first
                await stream.send_all(_command(b"PING"))
                assert await _read_until(stream, b"+PONG\r\n") == b"+PONG\r\n"
                await stream.aclose()
            server.shutdown()
