"""What an attacker on the Raft port gets: refused, counted and logged (rate-limited).

Unknown CURVE keys, plaintext clients, bytes that are not ZMTP, a replayed CURVE handshake
and forged or undecodable envelopes from an admitted peer: each one is refused, counted in
`TransportStats` and logged as one warning naming the address or link and the reason.
"""

from __future__ import annotations

import contextlib
import logging

import cbor2
import pytest
import trio
import zmq

from harness.wire_probes import raw_dealer, recording_proxy
from transports import CurveConfig, DropReason, TransportConfig
from transports.refusals import RefusalLog
from transports.testing import open_mesh
from transports.zmq_transport import ZmqTransport, open_zmq_transport

Keys = dict[int, tuple[bytes, bytes]]


def _keys(*nodes: int) -> Keys:
    return {node: zmq.curve_keypair() for node in nodes}


def _config(node: int, own: tuple[bytes, bytes], admitted: dict[int, bytes]) -> TransportConfig:
    return TransportConfig(
        node_id=node, cluster_id="test-cluster", send_timeout=0.3,
        curve=CurveConfig(own[0], own[1], admitted),
    )


def _warnings(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [
        r.getMessage() for r in caplog.records
        if r.levelno == logging.WARNING and text in r.getMessage()
    ]


async def _until(what: str, condition: object, timeout: float = 10.0) -> None:
    with trio.fail_after(timeout):
        while not condition():  # type: ignore[operator]
            await trio.sleep(0.02)


async def _raw_tcp(address: str, data: bytes) -> None:
    host, port = address.rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        with contextlib.suppress(trio.BrokenResourceError):
            await stream.send_all(data)
            await trio.sleep(0.05)


def test_refusal_log_gives_a_burst_then_one_summary_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    refusals = RefusalLog(burst=3, interval=60.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="aspen.transports.refused"):
        for i in range(1000):
            refusals.warn("refused %d", i)
        refusals.flush()  # the interval is not over: no summary yet
        assert [r.getMessage() for r in caplog.records] == ["refused 0", "refused 1", "refused 2"]
        now[0] = 61.0
        refusals.flush()
        assert len(caplog.records) == 4
        assert caplog.records[3].getMessage().startswith("997 more refused peer connections")
        refusals.flush()  # nothing new: no second summary
        refusals.warn("refused %d", 1000)  # a fresh interval has a fresh burst
        assert len(caplog.records) == 5 and caplog.records[4].getMessage() == "refused 1000"


async def test_plaintext_garbage_and_unknown_key_are_refused_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    keys = _keys(1, 2)
    stranger = zmq.curve_keypair()
    caplog.set_level(logging.WARNING)
    async with open_zmq_transport(_config(1, keys[1], {2: keys[2][0]})) as t:
        t.add_peer(2, "127.0.0.1:1")
        refused = t.stats.handshakes_refused
        envelope = cbor2.dumps([1, 0, "test-cluster", 2, b"plain"])
        # 1. A plaintext ZeroMQ client on a CURVE port: a mechanism mismatch, or a broken
        # pipe when the client hung up on the server's greeting first (the DEALER retries
        # while it lives, so there may be several).
        await raw_dealer(t.address, b"2", [envelope])
        await _until("plaintext refusal", lambda: refused["protocol"] + refused["no_detail"] >= 1)
        lines = _warnings(caplog, "handshake failed (")
        assert lines and all(
            "(protocol: zmtp_mechanism_mismatch)" in line or "(no_detail: " in line
            for line in lines
        )
        assert all(line.startswith("refused peer connection from ") for line in lines)
        # 2. Bytes that are not ZMTP at all (an HTTP request).
        await _raw_tcp(t.address, b"GET / HTTP/1.0\r\n\r\n" * 4)
        await _until("garbage refusal", lambda: refused["no_handshake"] >= 1)
        assert _warnings(caplog, "handshake failed (no_handshake")
        # 3. A CURVE client whose key is no configured peer's: ZAP refuses and logs the key.
        await raw_dealer(
            t.address, b"2", [envelope],
            CURVE_SERVERKEY=keys[1][0], CURVE_PUBLICKEY=stranger[0], CURVE_SECRETKEY=stranger[1],
        )
        await _until("auth refusal", lambda: refused["auth"] >= 1)
        assert t.stats.auth_refused >= 1
        line = _warnings(caplog, "is not a configured peer")[0]
        assert stranger[0].decode() in line and "127.0.0.1" in line
        assert t.stats.received == 0
        # Nothing reached the envelope stage (the only drops: our own protocol announcements
        # to the absent node 2).
        assert set(t.stats.dropped) <= {DropReason.UNREACHABLE}
        assert set(refused) <= {"protocol", "no_handshake", "auth", "no_detail"}


async def test_a_flood_of_refused_connections_is_counted_but_logs_only_a_burst(
    caplog: pytest.LogCaptureFixture,
) -> None:
    keys = _keys(1, 2)
    caplog.set_level(logging.WARNING)
    async with open_zmq_transport(_config(1, keys[1], {2: keys[2][0]})) as t:
        t.add_peer(2, "127.0.0.1:1")
        assert isinstance(t, ZmqTransport)
        for _ in range(40):
            await _raw_tcp(t.address, b"\x00garbage\xff" * 8)
        await _until("40 refusals", lambda: t.stats.handshakes_refused["no_handshake"] >= 40)
        lines = _warnings(caplog, "refused peer connection")
        assert len(lines) == t._refusals.burst  # the rest wait for the interval's summary
        t._refusals.interval = 0.0  # end the interval now: the monitor task writes the summary
        await _until("summary", lambda: _warnings(caplog, "30 more refused"), timeout=5)
        assert t.stats.received == 0


async def test_a_replayed_curve_handshake_is_refused_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A captured CURVE conversation replayed on a new connection delivers nothing: the
    server's cookie key was per-connection, so the replayed handshake fails as a ZMTP
    protocol error, which is counted and logged."""

    keys = _keys(1, 2)
    recorded: list[bytes] = []
    caplog.set_level(logging.WARNING)
    async with open_mesh("zmq", 0) as mesh, trio.open_nursery() as nursery:
        await mesh.start(1, _config(1, keys[1], {2: keys[2][0]}))
        mesh[1].add_peer(2, "127.0.0.1:1")
        proxy = await nursery.start(recording_proxy, mesh.addresses[1], recorded)
        await mesh.start(2, _config(2, keys[2], {1: keys[1][0]}))
        mesh[2].add_peer(1, f"127.0.0.1:{proxy}")
        with trio.fail_after(10):
            while mesh[1].stats.received < 1:
                await mesh[2].send(1, b"pay 100 to mallory")
                await trio.sleep(0.05)
            assert await mesh.receive(1) == (2, b"pay 100 to mallory")
        await mesh.stop(2)
        received = mesh[1].stats.received
        assert sum(map(len, recorded)) > 0
        refused = mesh[1].stats.handshakes_refused
        before = sum(refused.values())
        await _raw_tcp(mesh.addresses[1], b"".join(recorded))
        await _until("replay refusal", lambda: sum(refused.values()) > before)
        assert refused["protocol"] >= 1
        assert _warnings(caplog, "handshake failed (protocol: zmtp_")
        assert mesh[1].stats.received == received
        nursery.cancel_scope.cancel()


async def test_forged_and_undecodable_envelopes_from_an_admitted_peer_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    keys = _keys(1, 2, 3)
    caplog.set_level(logging.WARNING)
    async with open_zmq_transport(_config(1, keys[1], {2: keys[2][0], 3: keys[3][0]})) as t:
        t.add_peer(2, "127.0.0.1:1")
        t.add_peer(3, "127.0.0.1:1")
        as_node_2 = {
            "CURVE_SERVERKEY": keys[1][0], "CURVE_PUBLICKEY": keys[2][0],
            "CURVE_SECRETKEY": keys[2][1],
        }
        forged = cbor2.dumps([1, 0, "test-cluster", 3, b"i am node 3"])
        other_cluster = cbor2.dumps([1, 0, "someone-else", 2, b"x"])
        await raw_dealer(
            t.address, b"2", [forged, b"\xff\x00 not cbor", other_cluster], **as_node_2
        )
        incoming = {DropReason.SENDER_MISMATCH, DropReason.MALFORMED, DropReason.WRONG_CLUSTER}
        await _until("three drops", lambda: sum(t.stats.dropped[r] for r in incoming) >= 3)
        assert {r: t.stats.dropped[r] for r in incoming} == {
            DropReason.SENDER_MISMATCH: 1, DropReason.MALFORMED: 1, DropReason.WRONG_CLUSTER: 1,
        }
        lines = _warnings(caplog, "dropped a peer message from the link of node 2")
        assert len(lines) == 3
        assert any("sender_mismatch (envelope claims node 3)" in line for line in lines)
        assert any("malformed (not CBOR" in line for line in lines)
        assert t.stats.received == 0


@pytest.mark.slow
async def test_a_node_whose_key_a_peer_does_not_know_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The refused side's view (its DEALER's monitor): one line naming the peer and the likely
    fix, however often its fresh sockets are refused again; the counter counts every one."""
    keys = _keys(1, 2)
    caplog.set_level(logging.WARNING)
    async with open_mesh("zmq", 0) as mesh:
        await mesh.start(1, _config(1, keys[1], {2: zmq.curve_keypair()[0]}))  # stale key
        mesh[1].add_peer(2, "127.0.0.1:1")
        await mesh.start(2, _config(2, keys[2], {1: keys[1][0]}))
        mesh[2].add_peer(1, mesh.addresses[1])
        failed = mesh[2].stats.outgoing_handshakes_failed
        with trio.fail_after(20):
            while failed["auth"] < 2:  # two sockets refused (a fresh one every 3 s)
                await mesh[2].send(1, b"knock")
                await trio.sleep(0.05)
        lines = _warnings(caplog, "refused our handshake")
        assert len(lines) == 1
        assert f"peer 1 at {mesh.addresses[1]}" in lines[0]
        assert "auth: ZAP status 400" in lines[0] and "curve_peer_keys" in lines[0]
        assert mesh[1].stats.received == 0
