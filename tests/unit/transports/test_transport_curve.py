"""CURVE: keygen files, and a ZAP handler that admits only configured peers' keys."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import cbor2
import pytest
import trio
import zmq

from harness.wire_probes import raw_dealer
from transports import CurveConfig, DropReason, TransportConfig, curve
from transports.curve import keygen_main, load_key
from transports.testing import open_mesh
from transports.zmq_transport import open_zmq_transport

Keys = dict[int, tuple[bytes, bytes]]


def test_keygen_writes_a_keypair_with_a_private_secret(tmp_path: Path) -> None:
    assert keygen_main(["--dir", str(tmp_path / "keys"), "--name", "n1"]) == 0
    public_path = tmp_path / "keys" / "n1.key"
    secret_path = tmp_path / "keys" / "n1.key_secret"
    assert stat.S_IMODE(secret_path.stat().st_mode) == 0o600
    public, secret = load_key(public_path), load_key(secret_path)
    assert zmq.curve_public(secret) == public
    # No silent overwrite; --force replaces both.
    assert keygen_main(["--dir", str(tmp_path / "keys"), "--name", "n1"]) == 1
    assert load_key(public_path) == public
    assert keygen_main(["--dir", str(tmp_path / "keys"), "--name", "n1", "--force"]) == 0
    assert load_key(public_path) != public
    assert stat.S_IMODE(secret_path.stat().st_mode) == 0o600


def test_load_key_rejects_garbage(tmp_path: Path) -> None:
    path = tmp_path / "bad.key"
    path.write_text("# comment\nnot-a-key\n")
    with pytest.raises(ValueError, match="Z85"):
        load_key(path)


def _keys(*nodes: int) -> Keys:
    return {node: zmq.curve_keypair() for node in nodes}


def _config(node: int, own: tuple[bytes, bytes], admitted: dict[int, bytes]) -> TransportConfig:
    return TransportConfig(
        node_id=node,
        cluster_id="test-cluster",
        send_timeout=0.3,
        curve=CurveConfig(own[0], own[1], admitted),
    )


async def test_curve_mesh_delivers_between_configured_peers() -> None:
    keys = _keys(1, 2, 3)
    async with open_mesh("zmq", 0) as mesh:
        for node in (1, 2, 3):
            others = {peer: keys[peer][0] for peer in keys if peer != node}
            await mesh.start(node, _config(node, keys[node], others))
        for node in (1, 2, 3):
            for peer in (1, 2, 3):
                if peer != node:
                    mesh[node].add_peer(peer, mesh.addresses[peer])
        await mesh.warm_up()
        with trio.fail_after(10):
            await mesh[3].send(1, b"over curve")
            assert await mesh.receive(1) == (3, b"over curve")
        assert all(mesh[n].stats.auth_refused == 0 for n in (1, 2, 3))


async def test_wrong_key_is_refused_logged_and_never_delivered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    keys = _keys(1, 2)
    impostor_keys = zmq.curve_keypair()
    async with open_mesh("zmq", 0) as mesh:
        await mesh.start(1, _config(1, keys[1], {2: keys[2][0]}))
        mesh[1].add_peer(2, "127.0.0.1:1")  # node 2's real address does not matter here
        # An impostor claims to be node 2 and knows node 1's public key, but has its own
        # keypair: only node 1's ZAP handler stands between it and node 1's inbox.
        await mesh.start(2, _config(2, impostor_keys, {1: keys[1][0]}))
        mesh[2].add_peer(1, mesh.addresses[1])
        with caplog.at_level(logging.WARNING, logger="aspen.transports.curve"):
            with trio.fail_after(10):
                while (
                    mesh[1].stats.auth_refused < 1
                    or mesh[2].stats.dropped[DropReason.UNREACHABLE] < 3
                ):
                    await mesh[2].send(1, b"let me in")
                    await trio.sleep(0.05)
        assert mesh[1].stats.received == 0
        assert mesh[2].stats.sent == 0  # IMMEDIATE: no handshake, nothing ever queued
        assert mesh[2].stats.dropped[DropReason.UNREACHABLE] > 0
        assert any("refused peer connection" in r.getMessage() for r in caplog.records)
        assert any(impostor_keys[0].decode() in r.getMessage() for r in caplog.records)
        # The real node 2, with the listed key, gets through: the refusal was about the key.
        await mesh.stop(2)
        await mesh.start(2, _config(2, keys[2], {1: keys[1][0]}))
        mesh[2].add_peer(1, mesh.addresses[1])
        await mesh.warm_up(links=[(2, 1)])
        with trio.fail_after(10):
            await mesh[2].send(1, b"real")
            assert await mesh.receive(1) == (2, b"real")


@pytest.mark.slow
async def test_refused_peer_gets_in_once_its_key_is_listed() -> None:
    """A refused DEALER never retries by itself; the sender replaces it until admitted."""
    keys = _keys(1, 2)
    async with open_mesh("zmq", 0) as mesh:
        await mesh.start(1, _config(1, keys[1], {2: zmq.curve_keypair()[0]}))  # stale key
        mesh[1].add_peer(2, "127.0.0.1:1")
        await mesh.start(2, _config(2, keys[2], {1: keys[1][0]}))
        mesh[2].add_peer(1, mesh.addresses[1])
        with trio.fail_after(10):
            while mesh[1].stats.auth_refused < 1:
                await mesh[2].send(1, b"knock")
                await trio.sleep(0.05)
        mesh[1].add_peer(2, "127.0.0.1:1", keys[2][0])  # membership change brings the key
        await mesh.warm_up(timeout=15, links=[(2, 1)])
        assert mesh[1].stats.received >= 1


async def test_plaintext_client_gets_nothing_through() -> None:
    keys = _keys(1, 2)
    async with open_zmq_transport(_config(1, keys[1], {2: keys[2][0]})) as t:
        t.add_peer(2, "127.0.0.1:1")
        envelope = cbor2.dumps([1, 0, "test-cluster", 2, b"plain"])
        await raw_dealer(t.address, b"2", [envelope] * 3, settle=0)
        await trio.sleep(0.5)  # time enough for loopback delivery, were it accepted
        assert t.stats.received == 0
        # Refused at the handshake, not at the envelope (the only drops: our own protocol
        # announcements to the absent node 2).
        assert set(t.stats.dropped) <= {DropReason.UNREACHABLE}


async def test_admitted_key_cannot_speak_for_another_node() -> None:
    """ZAP names the key's owner (User-Id); the link identity and envelope must agree."""
    keys = _keys(1, 2, 3)
    async with open_zmq_transport(_config(1, keys[1], {2: keys[2][0], 3: keys[3][0]})) as t:
        t.add_peer(2, "127.0.0.1:1")
        t.add_peer(3, "127.0.0.1:1")
        as_node_2 = {
            "CURVE_SERVERKEY": keys[1][0],
            "CURVE_PUBLICKEY": keys[2][0],
            "CURVE_SECRETKEY": keys[2][1],
        }
        forged = cbor2.dumps([1, 0, "test-cluster", 3, b"i am node 3"])
        honest = cbor2.dumps([1, 0, "test-cluster", 2, b"i am node 2"])
        await raw_dealer(t.address, b"3", [forged], **as_node_2, settle=0)
        await raw_dealer(t.address, b"2", [honest], **as_node_2, settle=0)
        with trio.fail_after(5):
            assert await t.receive() == (2, b"i am node 2")
        assert t.stats.dropped == {DropReason.SENDER_MISMATCH: 1}


async def test_zap_handler_failure_is_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    """CURVE fails open without ZAP, so a dead handler must take the transport down."""

    def broken(*args: object) -> list[bytes]:
        raise RuntimeError("zap handler broke")

    monkeypatch.setattr(curve, "_answer", broken)
    keys = _keys(1, 2)
    with trio.fail_after(10), pytest.raises(RuntimeError, match="zap handler broke"):
        async with open_zmq_transport(_config(1, keys[1], {2: keys[2][0]})) as t:
            t.add_peer(2, "127.0.0.1:1")
            options = {
                "CURVE_SERVERKEY": keys[1][0],
                "CURVE_PUBLICKEY": keys[2][0],
                "CURVE_SECRETKEY": keys[2][1],
            }
            await raw_dealer(t.address, b"2", [b"x"], **options, settle=0)
            await trio.sleep_forever()


def test_load_curve_config_from_keygen_files(tmp_path: Path) -> None:
    for name in ("n1", "n2", "n3"):
        assert keygen_main(["--dir", str(tmp_path), "--name", name]) == 0
    n3_public = load_key(tmp_path / "n3.key")
    config = curve.load_curve_config(
        tmp_path / "n1.key", tmp_path / "n1.key_secret", {2: tmp_path / "n2.key", 3: n3_public}
    )
    assert config.public_key == load_key(tmp_path / "n1.key")
    assert dict(config.peer_keys) == {2: load_key(tmp_path / "n2.key"), 3: n3_public}
    with pytest.raises(ValueError, match="public half"):
        curve.load_curve_config(tmp_path / "n2.key", tmp_path / "n1.key_secret", {})
