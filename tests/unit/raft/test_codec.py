"""Codec: every message round-trips; hostile bytes raise RaftDecodeError and nothing else."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aspen.raft import (
    MESSAGE_TYPES,
    AppendEntries,
    Entry,
    EntryKind,
    Heartbeat,
    InstallSnapshot,
    Membership,
    Message,
    RaftDecodeError,
    ReadIndexResponse,
    RequestVote,
    SnapshotMeta,
    TimeoutNow,
    decode_membership,
    decode_message,
    encode_membership,
    encode_message,
)
from aspen.raft.wire import VERSION

u64 = st.integers(min_value=0, max_value=(1 << 64) - 1)
small = st.integers(min_value=0, max_value=1000)
ids = st.frozensets(st.integers(min_value=1, max_value=1 << 20), max_size=6)
memberships = st.builds(Membership, voters=ids, learners=ids, voters_outgoing=ids)
entries = st.builds(Entry, index=u64, term=u64, kind=st.sampled_from(EntryKind), data=st.binary())
metas = st.builds(SnapshotMeta, index=u64, term=u64, membership=memberships)


def _strategy_for(cls: type) -> st.SearchStrategy[Message]:
    overrides = {
        "entries": st.lists(entries, max_size=5).map(tuple),
        "meta": metas,
        "data": st.binary(max_size=64),
        "token": st.binary(max_size=32),
    }
    kwargs = {}
    for field in cls.__attrs_attrs__:  # type: ignore[attr-defined]
        if field.name in overrides:
            kwargs[field.name] = overrides[field.name]
        elif field.type in ("bool", bool):
            kwargs[field.name] = st.booleans()
        else:
            kwargs[field.name] = u64
    return st.builds(cls, **kwargs)


messages = st.one_of([_strategy_for(cls) for cls in MESSAGE_TYPES])


@given(messages)
@settings(max_examples=400)
def test_round_trip(msg: Message) -> None:
    data = encode_message(msg)
    assert decode_message(data) == msg
    assert encode_message(decode_message(data)) == data  # deterministic


@given(memberships)
def test_membership_round_trip(m: Membership) -> None:
    assert decode_membership(encode_membership(m)) == m


def test_encoding_is_versioned() -> None:
    raw = cbor2.loads(encode_message(Heartbeat(1, 2, 3, 4, 5)))
    assert raw[0] == VERSION
    raw[0] = VERSION + 1
    with pytest.raises(RaftDecodeError, match="version"):
        decode_message(cbor2.dumps(raw))


@given(st.binary(max_size=200))
@settings(max_examples=500)
def test_random_bytes_raise_only_decode_error(data: bytes) -> None:
    try:
        decode_message(data)
    except RaftDecodeError:
        pass


@given(messages, st.data())
@settings(max_examples=300)
def test_truncated_and_mutated_messages(msg: Message, data: st.DataObject) -> None:
    raw = encode_message(msg)
    cut = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    with pytest.raises(RaftDecodeError):
        decode_message(raw[:cut])
    pos = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    flipped = bytearray(raw)
    flipped[pos] ^= data.draw(st.integers(min_value=1, max_value=255))
    try:
        out = decode_message(bytes(flipped))
    except RaftDecodeError:
        return
    assert type(out) in MESSAGE_TYPES


cbor_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(1 << 70), max_value=1 << 70)
    | st.floats()
    | st.binary(max_size=8)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=4), children)
    ),
    max_leaves=8,
)


@given(st.lists(cbor_values, max_size=10))
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
def test_well_formed_cbor_of_wrong_shape(items: list[object]) -> None:
    for prefix in ([], [VERSION], [VERSION, 3]):
        try:
            decode_message(cbor2.dumps(prefix + items))
        except RaftDecodeError:
            pass


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\xff",
        b"\x9f" * 10_000,  # deep indefinite nesting
        b"\x81" * 100_000,  # deep definite nesting
        b"\x5b\xff\xff\xff\xff\xff\xff\xff\xff",  # a byte string claiming 2**64 bytes
        b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff",  # an array claiming 2**64 items
        b"\xd8\x1d\x00",  # shared-reference tag pointing nowhere
        b"\xc2\x5a\xff\xff\xff\xff",  # bignum with a huge length
        cbor2.dumps([VERSION, 3, True, 2, 3, 4, 5, [], 0]),  # bool where an int belongs
        cbor2.dumps([VERSION, 3, -1, 2, 3, 4, 5, [], 0]),  # negative id
        cbor2.dumps([VERSION, 3, 1, 2, 1 << 64, 4, 5, [], 0]),  # term beyond u64
        cbor2.dumps([VERSION, 3, 1, 2, 3, 4, 5, [[1, 1, 9, b""]], 0]),  # unknown entry kind
        cbor2.dumps([VERSION, 99, 1, 2, 3]),  # unknown type
        cbor2.dumps([VERSION, 10, 1, 2, 3, b"tok"]),  # too few items
        cbor2.dumps({"v": VERSION}),
        cbor2.dumps([VERSION, 5, 1, 2, 3, [1, 1, [[1], [], "x"]], 0, b"", True]),
    ],
)
def test_hostile_inputs(payload: bytes) -> None:
    with pytest.raises(RaftDecodeError):
        decode_message(payload)


def test_fields_a_newer_release_appends_are_ignored() -> None:
    msg = ReadIndexResponse(1, 2, 3, b"tok", 9, True)
    newer = [*cbor2.loads(encode_message(msg)), "a field of a later release", 42]
    assert decode_message(cbor2.dumps(newer)) == msg
    assert decode_message(cbor2.dumps([VERSION, 11, 1, 2, 3, "extra"])) == TimeoutNow(1, 2, 3)


def test_decode_rejects_non_bytes() -> None:
    with pytest.raises(RaftDecodeError):
        decode_message("text")  # type: ignore[arg-type]
    with pytest.raises(RaftDecodeError):
        decode_membership(b"\x80")


def test_examples_round_trip() -> None:
    meta = SnapshotMeta(7, 2, Membership(voters={1, 2}, learners={3}))
    for msg in (
        RequestVote(1, 2, 3, 4, 5, pre_vote=True),
        AppendEntries(1, 2, 3, 4, 2, (Entry(5, 3, EntryKind.NOOP),), 4),
        InstallSnapshot(1, 2, 3, meta, 0, b"abc", True),
        ReadIndexResponse(1, 2, 3, b"tok", 9, True),
    ):
        assert decode_message(encode_message(msg)) == msg
