"""A cluster over the real ZeroMQ transport with CURVE keys from ClusterSettings."""

from __future__ import annotations

import socket

import trio
import zmq

from aspen.cluster import ClusterNode, ClusterSettings
from aspen.kv.ops import ReadOp, WriteOp
from aspen.resp.values import OK
from transports import CurveConfig


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_cluster_over_curve_encrypted_zmq() -> None:
    ids = (1, 2, 3)
    keys = {i: zmq.curve_keypair() for i in ids}  # (public, secret)
    addrs = {i: f"127.0.0.1:{_free_port()}" for i in ids}
    nodes = {
        i: ClusterNode(
            ClusterSettings(
                node_id=i,
                raft_address=addrs[i],
                peers={j: a for j, a in addrs.items() if j != i},
                transport="zmq",
                tick_interval=0.05,
                bootstrap_voters=ids,
                curve=CurveConfig(keys[i][0], keys[i][1], {j: keys[j][0] for j in ids if j != i}),
            )
        )
        for i in ids
    }
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            for node in nodes.values():
                await nursery.start(node.run)
            for node in nodes.values():
                assert node.transport is not None
                assert node.transport.config.curve == node.settings.curve  # keys reached it
            while not any(n.is_leader() for n in nodes.values()):
                await trio.sleep(0.01)
            for i, node in nodes.items():
                assert await node.write(WriteOp((b"SET", b"k%d" % i, b"v"))) == OK
            for node in nodes.values():
                for i in ids:
                    assert await node.read(ReadOp((b"GET", b"k%d" % i))) == b"v"
            nursery.cancel_scope.cancel()
