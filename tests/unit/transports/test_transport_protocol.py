"""Protocol announcements: a cluster runs at the oldest member's version and switches when
every member announces the newer one (transports.protocol)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import cbor2
import pytest
import trio

from transports import DropReason, MessageKind, TransportConfig
from transports.base import COMPRESS_AT, TransportBase
from transports.envelope import Envelope, EnvelopeError, decode, encode, encode_compressed
from transports.lifecycle import running
from transports.protocol import (
    HELLO_TTL,
    PROTOCOL,
    Hello,
    HelloError,
    PeerVersions,
    decode_hello,
    encode_hello,
)
from transports.zmq_transport import ZmqTransport


class OldZmqTransport(ZmqTransport):
    """What a protocol-1 release does on the wire: no announcements, no compression, and a
    strict version-1 decoder (a HELLO is an unknown kind to it)."""

    ANNOUNCES = False
    COMPRESSES = False

    def __init__(self, config: TransportConfig) -> None:
        super().__init__(config)
        self._cluster_protocol = 1

    def _check(self, data: bytes, link_sender: int | None) -> object:  # type: ignore[override]
        value = cbor2.loads(data)
        if len(value) != 5 or value[0] != 1 or value[1] > 3:
            self._stats.drop(DropReason.MALFORMED)
            return None
        return super()._check(data, link_sender)


@asynccontextmanager
async def _mesh(
    kinds: dict[int, type[ZmqTransport]],
) -> AsyncIterator[tuple[dict[int, TransportBase], Callable[..., Awaitable[None]]]]:
    """Transports on free ports; `swap(node, cls)` restarts one as another release."""
    from harness.daemons import free_ports

    ports = dict(zip(kinds, free_ports(len(kinds)), strict=True))
    addresses = {n: f"127.0.0.1:{p}" for n, p in ports.items()}
    live: dict[int, TransportBase] = {}
    scopes: dict[int, trio.CancelScope] = {}

    def config(node: int) -> TransportConfig:
        return TransportConfig(
            node_id=node, cluster_id="c", bind=addresses[node], send_timeout=0.3,
            peers={p: a for p, a in addresses.items() if p != node},
        )

    async def run(
        node: int, cls: type[ZmqTransport], *, task_status: trio.TaskStatus[None]
    ) -> None:
        with trio.CancelScope() as scopes[node]:
            t = cls(config(node))
            async with running(t, t._open):
                live[node] = t
                task_status.started()
                await trio.sleep_forever()

    async with trio.open_nursery() as nursery:

        async def swap(node: int, cls: type[ZmqTransport]) -> None:
            scopes.pop(node).cancel()
            await trio.sleep(0.1)
            await nursery.start(run, node, cls)

        for node, cls in kinds.items():
            await nursery.start(run, node, cls)
        yield live, swap
        nursery.cancel_scope.cancel()


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.05)


def test_hello_round_trips_and_tolerates_additions() -> None:
    hello = Hello(2, frozenset({"hello", "zlib"}), "aspen-peer-2")
    assert decode_hello(encode_hello(hello)) == hello
    newer = cbor2.dumps({"protocol": 3, "features": ["x"], "release": "r", "added": [1, 2]})
    assert decode_hello(newer) == Hello(3, frozenset({"x"}), "r")
    for bad in (b"\xff", cbor2.dumps([2]), cbor2.dumps({"protocol": 0}),
                cbor2.dumps({"protocol": 2, "features": [1]})):
        with pytest.raises(HelloError):
            decode_hello(bad)


def test_cluster_protocol_is_the_minimum_and_announcements_expire() -> None:
    versions = PeerVersions()
    assert versions.cluster_protocol([2, 3], now=0.0) == 1  # nobody announced yet
    versions.record(2, Hello(PROTOCOL, frozenset()), now=0.0)
    assert versions.cluster_protocol([2, 3], now=0.0) == 1  # node 3 still silent
    versions.record(3, Hello(PROTOCOL + 5, frozenset()), now=1.0)
    assert versions.cluster_protocol([2, 3], now=1.0) == PROTOCOL  # never above our own
    assert versions.cluster_protocol([2, 3], now=HELLO_TTL + 0.5) == 1  # node 2 went quiet


def test_envelope_v2_compresses_and_refuses_a_decompression_bomb() -> None:
    env = Envelope(MessageKind.RAFT, "c", 1, b"abc" * 100_000)
    raw = encode_compressed(env)
    assert len(raw) < 10_000 and decode(raw) == env
    with pytest.raises(EnvelopeError) as info:
        decode(raw, max_payload=1000)
    assert info.value.reason is DropReason.TOO_LARGE
    # Extra elements a later release may append are ignored in both versions.
    extended = [*cbor2.loads(encode(env))[:5], "later"]
    assert decode(cbor2.dumps(extended)) == env


async def test_a_mixed_cluster_runs_at_version_1_then_switches_when_all_announce_2() -> None:
    big = os.urandom(1000) * (2 * COMPRESS_AT // 1000)  # compressible, above the threshold
    async with _mesh({1: ZmqTransport, 2: ZmqTransport, 3: OldZmqTransport}) as (t, swap):
        # Nodes 1 and 2 hear each other's HELLOs, never one from node 3: they stay at 1.
        await _until(lambda: t[1].peer_protocols()[2] == PROTOCOL)
        await trio.sleep(1.5)  # more than one announcement interval
        assert t[1].cluster_protocol == t[2].cluster_protocol == 1
        for sender in (1, 2):
            await t[sender].send(3, big)
        with trio.fail_after(10):
            assert sorted([await t[3].receive() for _ in range(2)]) == [(1, big), (2, big)]
        assert t[1].stats.compressed == t[2].stats.compressed == 0
        # The old node dropped the HELLOs it does not understand, and nothing else.
        assert set(t[3].stats.dropped) <= {DropReason.MALFORMED}
        # Node 3 is upgraded: every node switches to protocol 2, and big payloads compress.
        await swap(3, ZmqTransport)
        await _until(lambda: all(t[n].cluster_protocol == PROTOCOL for n in (1, 2, 3)))
        await t[1].send(3, big)
        with trio.fail_after(10):
            assert await t[3].receive() == (1, big)
        assert t[1].stats.compressed == 1
        # Rolled back: the others fall back to protocol 1 once its announcement expires.
        await swap(3, OldZmqTransport)
        await _until(lambda: t[1].cluster_protocol == 1, timeout=HELLO_TTL + 5)
        await t[1].send(3, big)
        with trio.fail_after(10):
            assert await t[3].receive() == (1, big)
        assert t[1].stats.compressed == 1
