"""The cluster protocol over a real ZeroMQ cluster: the minimum over the Raft members, not
over every address a node knows (a spare that never joined must not hold it back)."""

from __future__ import annotations

import socket

import trio

from aspen.cluster import ClusterNode, ClusterSettings
from aspen.kv.ops import ReadOp, WriteOp
from aspen.resp.values import OK
from transports.protocol import PROTOCOL


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_members_switch_to_the_new_protocol_and_compress_big_entries() -> None:
    ids = (1, 2, 3)
    addrs = {i: f"127.0.0.1:{_free_port()}" for i in (*ids, 4)}  # 4: a spare, never started
    nodes = {
        i: ClusterNode(
            ClusterSettings(
                node_id=i, raft_address=addrs[i],
                peers={j: a for j, a in addrs.items() if j != i}, transport="zmq",
                tick_interval=0.05, bootstrap_voters=ids,
            )
        )
        for i in ids
    }
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for node in nodes.values():
                await nursery.start(node.run)
            while not all(
                n.transport is not None and n.transport.cluster_protocol == PROTOCOL
                for n in nodes.values()
            ):
                await trio.sleep(0.05)
            for node in nodes.values():
                assert node.transport is not None
                assert node.transport.peer_protocols()[4] == 1  # the spare: never heard
            while not any(n.is_leader() for n in nodes.values()):
                await trio.sleep(0.01)
            leader = next(n for n in nodes.values() if n.is_leader())
            value = b"0123456789abcdef" * 8192  # 128 KiB, compressible
            assert await leader.write(WriteOp((b"SET", b"big", value))) == OK
            assert leader.transport is not None and leader.transport.stats.compressed >= 1
            for node in nodes.values():
                assert await node.read(ReadOp((b"GET", b"big"))) == value
            nursery.cancel_scope.cancel()
