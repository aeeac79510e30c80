"""A cluster over the real ZeroMQ transport with CURVE keys from ClusterSettings."""

from __future__ import annotations

import logging
import socket

import cbor2
import pytest
import trio
import zmq

from aspen.cluster import ClusterNode, ClusterSettings
from aspen.kv.ops import ReadOp, WriteOp
from aspen.resp.values import OK, Error
from transports import CurveConfig, DropReason


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


async def test_attacks_on_the_raft_port_are_refused_counted_logged_and_change_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 18 item 4 on a running CURVE cluster: an unknown key, a plaintext client,
    garbage bytes, and a forged Raft message on an admitted key are all refused; each shows
    in the node's log and /metrics, and the keyspace is what the clients wrote."""
    from aspen.api.metrics import NodeMetrics
    from aspen.raft.messages import AppendEntries
    from aspen.raft.wire import encode_message

    ids = (1, 2, 3)
    keys = {i: zmq.curve_keypair() for i in ids}
    addrs = {i: f"127.0.0.1:{_free_port()}" for i in ids}
    nodes = {
        i: ClusterNode(
            ClusterSettings(
                node_id=i, raft_address=addrs[i],
                peers={j: a for j, a in addrs.items() if j != i}, transport="zmq",
                tick_interval=0.05, bootstrap_voters=ids,
                curve=CurveConfig(keys[i][0], keys[i][1], {j: keys[j][0] for j in ids if j != i}),
            )
        )
        for i in ids
    }
    caplog.set_level(logging.WARNING)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for node in nodes.values():
                await nursery.start(node.run)
            while not any(n.is_leader() for n in nodes.values()):
                await trio.sleep(0.01)
            leader = next(n for n in nodes.values() if n.is_leader())
            assert await leader.write(WriteOp((b"SET", b"balance", b"100"))) == OK
            target = nodes[1]
            assert target.transport is not None
            # Every refusal logged here (a retrying plaintext DEALER alone would spend the
            # rate limit's burst; the limit has its own tests in tests/unit/transports).
            target.transport._refusals.burst = 10_000
            cluster_id = target.settings.cluster_id
            stranger = zmq.curve_keypair()
            # A forged AppendEntries that would overwrite the balance, sent on node 2's real
            # key but claiming to come from node 3 (identity and envelope both say 3).
            forged = encode_message(AppendEntries(
                src=3, dst=1, term=10**6, prev_log_index=0, prev_log_term=0, entries=(),
                commit=0,
            ))
            envelope = cbor2.dumps([1, 0, cluster_id, 3, forged])
            await _dealer(addrs[1], b"3", [envelope], keys[1][0], stranger)  # unknown key
            await _dealer(addrs[1], b"3", [envelope], None, None)  # plaintext
            await _dealer(addrs[1], b"3", [envelope], keys[1][0], keys[2])  # admitted, forged
            host, port = addrs[1].rsplit(":", 1)
            stream = await trio.open_tcp_stream(host, int(port))
            async with stream:
                await stream.send_all(b"\x16\x03\x01 not zmtp" * 10)  # garbage (a TLS hello?)
                await trio.sleep(0.1)
            assert target.transport is not None
            stats = target.transport.stats
            while not (
                stats.auth_refused >= 1 and stats.dropped[DropReason.SENDER_MISMATCH] >= 1
                and stats.handshakes_refused["protocol"] + stats.handshakes_refused["no_detail"]
                >= 1
                and stats.handshakes_refused["no_handshake"] >= 1
            ):
                await trio.sleep(0.02)
            messages = [r.getMessage() for r in caplog.records]
            assert any(stranger[0].decode() in m and "not a configured peer" in m
                       for m in messages)
            # A plaintext client: a mechanism mismatch, or (when it hangs up first) a broken
            # pipe on the server's greeting.
            assert any("handshake failed (protocol: zmtp_mechanism_mismatch)" in m
                       or "handshake failed (no_detail" in m for m in messages)
            assert any("handshake failed (no_handshake" in m for m in messages)
            assert any("from the link of node 2: sender_mismatch" in m for m in messages)
            metrics = NodeMetrics(target).render().decode()
            assert 'aspen_peer_auth_refused_total{node="1"} ' in metrics
            assert 'aspen_peer_handshakes_refused_total{node="1",reason="no_handshake"}' in metrics
            assert ('aspen_peer_messages_dropped_total{node="1",reason="sender_mismatch"} 1.0'
                    in metrics)
            # Nothing changed: same term (the forged term 10**6 was never seen), same data.
            assert all(n.core is not None and n.core.term < 10**6 for n in nodes.values())
            # The forged link identity took node 3's connection on node 1 over (ROUTER
            # handover) until the impostor left: a member's stolen key can disturb links,
            # not data. Wait out the reconnection, then read.
            for node in nodes.values():
                while (value := await node.read(ReadOp((b"GET", b"balance")))) != b"100":
                    assert isinstance(value, Error) and "CLUSTERDOWN" in value.message
                    await trio.sleep(0.1)
                assert await node.read(ReadOp((b"DBSIZE",))) == 1
            nursery.cancel_scope.cancel()


async def _dealer(
    address: str, identity: bytes, frames: list[bytes], server_key: bytes | None,
    own: tuple[bytes, bytes] | None,
) -> None:
    ctx = zmq.Context()
    try:
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.IDENTITY, identity)
        if server_key is not None and own is not None:
            sock.setsockopt(zmq.CURVE_SERVERKEY, server_key)
            sock.setsockopt(zmq.CURVE_PUBLICKEY, own[0])
            sock.setsockopt(zmq.CURVE_SECRETKEY, own[1])
        sock.connect(f"tcp://{address}")
        for data in frames:
            sock.send(data)
        await trio.sleep(0.3)
        sock.close(linger=2000)
    finally:
        await trio.to_thread.run_sync(ctx.term)
