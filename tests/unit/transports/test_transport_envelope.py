"""The envelope codec and config validation: hostile bytes never raise anything but
EnvelopeError, and well-formed envelopes round-trip."""

from __future__ import annotations

import cbor2
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from transports import DropReason, MemoryHub, MessageKind, TransportConfig
from transports.envelope import Envelope, EnvelopeError, decode, encode
from transports.testing import open_mesh

envelopes = st.builds(
    Envelope,
    kind=st.sampled_from(MessageKind),
    cluster_id=st.text(max_size=20),
    sender=st.integers(min_value=1, max_value=2**63 - 1),
    payload=st.binary(max_size=200),
)


@given(envelopes)
def test_round_trip(env: Envelope) -> None:
    assert decode(encode(env)) == env


@given(envelopes, st.data())
def test_truncated_envelope_is_rejected(env: Envelope, data: st.DataObject) -> None:
    raw = encode(env)
    cut = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    with pytest.raises(EnvelopeError) as info:
        decode(raw[:cut])
    assert info.value.reason == DropReason.MALFORMED


@given(st.binary(max_size=300))
def test_random_bytes_only_raise_envelope_error(raw: bytes) -> None:
    try:
        env = decode(raw)
    except EnvelopeError:
        return
    assert encode(env) == raw or decode(encode(env)) == env


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.binary() | st.text(),
        lambda inner: st.lists(inner, max_size=6),
        max_leaves=12,
    )
)
def test_wrong_shapes_are_rejected(value: object) -> None:
    """Any CBOR value that is not a well-typed 5-array (version 1, extra elements after
    them ignored) or version-2 6-array is refused, whatever it contains."""
    raw = cbor2.dumps(value)
    try:
        env = decode(raw)
    except EnvelopeError:
        return
    assert isinstance(value, list) and len(value) >= 5 and value[0] in (1, 2)
    if value[0] == 1:
        assert env.payload == value[4]
    else:
        assert len(value) >= 6 and value[5] in (0, 1)


def test_bool_is_not_an_integer_field() -> None:
    with pytest.raises(EnvelopeError):
        decode(cbor2.dumps([1, 0, "c", True, b""]))
    with pytest.raises(EnvelopeError):
        decode(cbor2.dumps([True, 0, "c", 1, b""]))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.binary(max_size=100) | envelopes.map(encode), max_size=20))
async def test_fuzzed_frames_never_break_a_running_transport(frames: list[bytes]) -> None:
    hub = MemoryHub()
    async with open_mesh("memory", 2, hub=hub) as mesh:
        for raw in frames:
            hub.inject(2, raw)
        # Whatever was injected, the node is alive and only vetted messages got through.
        stats = mesh[2].stats
        assert stats.received + stats.dropped_total == len(frames)
        with trio.fail_after(5):
            await mesh[1].send(2, b"alive")
            while (message := await mesh[2].receive())[1] != b"alive":
                assert message[0] == 1  # only node 1 is a peer of node 2
        assert (
            stats.dropped[DropReason.UNKNOWN_SENDER]
            + stats.dropped[DropReason.WRONG_CLUSTER]
            + stats.dropped[DropReason.MALFORMED]
            + stats.dropped[DropReason.BAD_VERSION]
            == stats.dropped_total
        )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"node_id": 0}, "node_id"),
        ({"peers": {1: "127.0.0.1:1"}}, "own peer"),
        ({"peers": {2: "nonsense"}}, "host:port"),
        ({"peers": {-2: "127.0.0.1:1"}}, "positive"),
        ({"bind": "127.0.0.1"}, "host:port"),
        ({"queue_size": 0}, "queue_size"),
        ({"max_message_size": -1}, "max_message_size"),
        ({"cluster_id": ""}, "cluster_id"),
    ],
)
def test_config_errors_name_the_key(changes: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"node_id": 1, "cluster_id": "c"}
    with pytest.raises(ValueError, match=message):
        TransportConfig(**(base | changes))  # type: ignore[arg-type]


def test_config_is_frozen_and_peers_are_read_only() -> None:
    config = TransportConfig(node_id=1, cluster_id="c", peers={2: "127.0.0.1:7000"})
    with pytest.raises(AttributeError):
        config.node_id = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.peers[3] = "127.0.0.1:7001"  # type: ignore[index]
