"""Pipelined writes on one connection share log entries, and replies keep request order."""

from __future__ import annotations

import trio

from harness.cluster import open_cluster
from harness.resp_wire import command as _command


async def _exchange(port: int, commands: list[tuple[bytes, ...]]) -> bytes:
    """Send all commands in one write; return the raw bytes of exactly len(commands) replies."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(b"".join(_command(*c) for c in commands))
        # Each reply here is one line, or a bulk: $n\r\n...\r\n. Count top-level replies.
        data = b""
        while _count_replies(data) < len(commands):
            chunk = await stream.receive_some(65536)
            assert chunk, "server closed the connection early"
            data += chunk
        return data


def _count_replies(data: bytes) -> int:
    n, i = 0, 0
    while True:
        end = data.find(b"\r\n", i)
        if end < 0:
            return n
        if data[i : i + 1] == b"$" and data[i + 1 : end] != b"-1":
            end = data.find(b"\r\n", end + 2 + int(data[i + 1 : end]))
            if end < 0:
                return n
        n += 1
        i = end + 2


async def test_a_pipeline_of_writes_is_one_batch_and_reads_see_earlier_writes() -> None:
    async with open_cluster(3, seed=41, tick_interval=0.05) as cluster:
        leader = await cluster.wait_leader()
        follower = next(n.id for n in cluster.running() if n.id != leader.id)
        for node_id in (leader.id, follower):
            port = await cluster.serve_resp(node_id)
            before = leader.stats.entries_proposed
            sets = [(b"SET", b"k%d" % i, b"v%d" % i) for i in range(200)]
            commands: list[tuple[bytes, ...]] = [
                *sets[:100],
                (b"GET", b"k99"),  # must see the write just before it
                (b"SET", b"k99", b"changed"),
                (b"GET", b"k99"),
                (b"INCR", b"counter"),
                (b"INCR", b"counter"),
                (b"PING",),
                *sets[100:],
                (b"GET", b"counter"),
                (b"DBSIZE",),
            ]
            with trio.fail_after(30):
                raw = await _exchange(port, commands)
            expected = (
                b"+OK\r\n" * 100
                + b"$3\r\nv99\r\n"
                + b"+OK\r\n$7\r\nchanged\r\n"
                + (b":1\r\n:2\r\n" if node_id == leader.id else b":3\r\n:4\r\n")
                + b"+PONG\r\n"
                + b"+OK\r\n" * 100
                + (b"$1\r\n2\r\n" if node_id == leader.id else b"$1\r\n4\r\n")
                + b":201\r\n"
            )
            assert raw == expected
            # 204 writes from one connection: far fewer log entries than writes.
            entries = leader.stats.entries_proposed - before
            assert entries < 40, entries


async def test_a_pipeline_of_reads_shares_read_index_rounds_and_keeps_order() -> None:
    async with open_cluster(3, seed=43, tick_interval=0.05) as cluster:
        leader = await cluster.wait_leader()
        follower = next(n.id for n in cluster.running() if n.id != leader.id)
        for n, node_id in enumerate((leader.id, follower)):
            node = cluster.nodes[node_id]
            port = await cluster.serve_resp(node_id)
            key = b"r%d" % n
            gets = [(b"GET", key)] * 50
            commands: list[tuple[bytes, ...]] = [
                (b"SET", key, b"old"),
                *gets,
                (b"SET", key, b"new"),  # behind started reads: must not overtake them
                *gets,
                (b"DEL", key),
                (b"GET", key),
            ]
            before = node.stats.read_index_calls
            with trio.fail_after(30):
                raw = await _exchange(port, commands)
            assert raw == (
                b"+OK\r\n"
                + b"$3\r\nold\r\n" * 50
                + b"+OK\r\n"
                + b"$3\r\nnew\r\n" * 50
                + b":1\r\n"
                + b"$-1\r\n"
            )
            # 101 linearizable reads in one pipeline: a handful of rounds, not one each.
            rounds = node.stats.read_index_calls - before
            assert 1 <= rounds <= 10, rounds
