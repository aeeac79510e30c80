"""CBOR encoding of Raft messages (and of MEMBERSHIP entry payloads).

Wire form of a message: a CBOR array `[VERSION, type_code, src, dst, term, *fields]`, fields
in the order of the `_SCHEMAS` table below. Decoding validates every element's type and range,
so `decode_message` raises `RaftDecodeError` and nothing else for any input.

Fields added after a message type first shipped are listed in `_OPTIONAL` (appended at the
end, within wire VERSION 1): the encoder leaves out a trailing run of them that hold their
default, and the decoder accepts a message with or without them. So a message that does not
use a new field is byte-for-byte what an older node sends and understands. Items beyond the
known fields are ignored (a newer release's additions; see transports.protocol for how a
cluster decides when every member reads them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import cbor2

from aspen.raft.errors import RaftDecodeError
from aspen.raft.messages import (
    AppendEntries,
    AppendEntriesResponse,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    InstallSnapshotResponse,
    Message,
    ReadIndexRequest,
    ReadIndexResponse,
    RequestVote,
    RequestVoteResponse,
    TimeoutNow,
)
from aspen.raft.types import Entry, EntryKind, Membership, SnapshotMeta

VERSION: Final = 1
_MAX_U64: Final = (1 << 64) - 1

# (type code, class, [(field, kind), ...]) — src, dst, term come first for every message.
_SCHEMAS: Final[list[tuple[int, type[Any], list[tuple[str, str]]]]] = [
    (
        1,
        RequestVote,
        [("last_log_index", "u"), ("last_log_term", "u"), ("pre_vote", "b"), ("transfer", "b")],
    ),
    (2, RequestVoteResponse, [("granted", "b"), ("pre_vote", "b")]),
    (
        3,
        AppendEntries,
        [("prev_log_index", "u"), ("prev_log_term", "u"), ("entries", "E"), ("commit", "u")],
    ),
    (
        4,
        AppendEntriesResponse,
        [
            ("success", "b"),
            ("index", "u"),
            ("hint_index", "u"),
            ("hint_term", "u"),
            ("incarnation", "u"),
        ],
    ),
    (5, InstallSnapshot, [("meta", "M"), ("offset", "u"), ("data", "y"), ("done", "b")]),
    (6, InstallSnapshotResponse, [("index", "u"), ("offset", "u")]),
    (7, Heartbeat, [("commit", "u"), ("context", "u"), ("incarnation", "u")]),
    (8, HeartbeatResponse, [("context", "u"), ("incarnation", "u")]),
    (9, ReadIndexRequest, [("token", "y")]),
    (10, ReadIndexResponse, [("token", "y"), ("index", "u"), ("ok", "b")]),
    (11, TimeoutNow, []),
]
# Trailing fields that may be absent on the wire (added later), with their default.
_OPTIONAL: Final[dict[type[Any], dict[str, Any]]] = {
    AppendEntriesResponse: {"incarnation": 0},
    Heartbeat: {"incarnation": 0},
    HeartbeatResponse: {"incarnation": 0},
}
for _cls, _opt in _OPTIONAL.items():  # they must be the last fields of their schema
    _names = [name for _code, c, fs in _SCHEMAS if c is _cls for name, _kind in fs]
    assert _names[len(_names) - len(_opt) :] == list(_opt), _cls
_BY_CODE: Final = {code: (cls, fields) for code, cls, fields in _SCHEMAS}
_BY_CLASS: Final = {cls: (code, fields) for code, cls, fields in _SCHEMAS}


# -- encoding ---------------------------------------------------------------------------------


def _enc_membership(m: Membership) -> list[list[int]]:
    return [sorted(m.voters), sorted(m.learners), sorted(m.voters_outgoing)]


def _enc_meta(meta: SnapshotMeta) -> list[Any]:
    return [meta.index, meta.term, _enc_membership(meta.membership)]


_ENCODERS: Final[dict[str, Callable[[Any], Any]]] = {
    "u": int,
    "b": bool,
    "y": bytes,
    "E": lambda entries: [[e.index, e.term, e.kind.value, e.data] for e in entries],
    "M": _enc_meta,
}


def encode_message(msg: Message) -> bytes:
    """Deterministic CBOR bytes for one message."""
    code, fields = _BY_CLASS[type(msg)]
    out: list[Any] = [VERSION, code, msg.src, msg.dst, msg.term]
    for name, kind in fields:
        out.append(_ENCODERS[kind](getattr(msg, name)))
    optional = _OPTIONAL.get(type(msg))
    if optional:
        for name in reversed(optional):  # drop trailing optional fields at their default
            if getattr(msg, name) != optional[name]:
                break
            out.pop()
    return cbor2.dumps(out)


def encode_membership(m: Membership) -> bytes:
    """Payload of a MEMBERSHIP entry: deterministic, so every bootstrapping node agrees."""
    return cbor2.dumps([VERSION, *_enc_membership(m)])


# -- decoding ---------------------------------------------------------------------------------


def _u(v: object) -> int:
    if type(v) is not int or not 0 <= v <= _MAX_U64:
        raise RaftDecodeError(f"expected an unsigned 64-bit integer, got {type(v).__name__}")
    return v


def _b(v: object) -> bool:
    if type(v) is not bool:
        raise RaftDecodeError(f"expected a boolean, got {type(v).__name__}")
    return v


def _y(v: object) -> bytes:
    if type(v) is not bytes:
        raise RaftDecodeError(f"expected a byte string, got {type(v).__name__}")
    return v


def _list(v: object, length: int | None = None) -> list[Any]:
    if type(v) is not list:
        raise RaftDecodeError(f"expected an array, got {type(v).__name__}")
    if length is not None and len(v) != length:
        raise RaftDecodeError(f"expected an array of {length} items, got {len(v)}")
    return v


def _ids(v: object) -> frozenset[int]:
    return frozenset(_u(x) for x in _list(v))


def _dec_membership(v: object) -> Membership:
    voters, learners, outgoing = _list(v, 3)
    return Membership(voters=_ids(voters), learners=_ids(learners), voters_outgoing=_ids(outgoing))


def _dec_meta(v: object) -> SnapshotMeta:
    index, term, membership = _list(v, 3)
    return SnapshotMeta(index=_u(index), term=_u(term), membership=_dec_membership(membership))


def _dec_entry(v: object) -> Entry:
    index, term, kind, data = _list(v, 4)
    try:
        ekind = EntryKind(_u(kind))
    except ValueError as exc:
        raise RaftDecodeError(f"unknown entry kind {kind!r}") from exc
    return Entry(index=_u(index), term=_u(term), kind=ekind, data=_y(data))


_KINDS: Final = {int(k): k for k in EntryKind}


def _dec_entries(v: object) -> tuple[Entry, ...]:
    """The hot path (every AppendEntries): the same checks as _dec_entry, inlined."""
    out = []
    for item in _list(v):
        if type(item) is not list or len(item) != 4:
            raise RaftDecodeError("an entry must be an array of 4 items")
        index, term, kind, data = item
        if (
            type(index) is not int
            or type(term) is not int
            or not 0 <= index <= _MAX_U64
            or not 0 <= term <= _MAX_U64
        ):
            raise RaftDecodeError("entry index/term must be unsigned 64-bit integers")
        ekind = _KINDS.get(kind) if type(kind) is int else None
        if ekind is None:
            raise RaftDecodeError(f"unknown entry kind {kind!r}")
        if type(data) is not bytes:
            raise RaftDecodeError("entry data must be a byte string")
        out.append(Entry(index, term, ekind, data))
    return tuple(out)


_DECODERS: Final[dict[str, Callable[[Any], Any]]] = {
    "u": _u,
    "b": _b,
    "y": _y,
    "E": _dec_entries,
    "M": _dec_meta,
}


def _loads(data: bytes) -> Any:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise RaftDecodeError(f"expected bytes, got {type(data).__name__}")
    try:
        return cbor2.loads(bytes(data))
    except RaftDecodeError:
        raise
    except (Exception, RecursionError) as exc:  # cbor2 raises many types on hostile input
        raise RaftDecodeError(f"malformed CBOR: {exc.__class__.__name__}: {exc}") from None


def decode_message(data: bytes) -> Message:
    """Parse and validate one message; raises only RaftDecodeError."""
    obj = _loads(data)
    try:
        items = _list(obj)
        if len(items) < 5:
            raise RaftDecodeError("message array too short")
        if type(items[0]) is not int or items[0] != VERSION:
            raise RaftDecodeError(f"unsupported raft codec version {items[0]!r}")
        code = items[1]
        if type(code) is not int or code not in _BY_CODE:
            raise RaftDecodeError(f"unknown message type {code!r}")
        cls, fields = _BY_CODE[code]
        n_optional = len(_OPTIONAL.get(cls, ()))
        if len(items) < 5 + len(fields) - n_optional:
            raise RaftDecodeError(f"{cls.__name__}: expected {5 + len(fields)} items")
        # Items after the known fields are a newer release's additions: ignored (a field
        # that an older node must not ignore is sent only at a cluster protocol it speaks).
        known = items[5 : 5 + len(fields)]
        kwargs: dict[str, Any] = {"src": _u(items[2]), "dst": _u(items[3]), "term": _u(items[4])}
        for (name, kind), value in zip(fields[: len(known)], known, strict=True):
            kwargs[name] = _DECODERS[kind](value)
        msg: Message = cls(**kwargs)
        return msg
    except RaftDecodeError:
        raise
    except Exception as exc:  # defensive: validation above should make this unreachable
        raise RaftDecodeError(f"invalid message: {exc.__class__.__name__}: {exc}") from None


def decode_membership(data: bytes) -> Membership:
    """Parse a MEMBERSHIP entry's payload; raises only RaftDecodeError."""
    obj = _loads(data)
    try:
        version, voters, learners, outgoing = _list(obj, 4)
        if type(version) is not int or version != VERSION:
            raise RaftDecodeError(f"unsupported membership encoding version {version!r}")
        return _dec_membership([voters, learners, outgoing])
    except RaftDecodeError:
        raise
    except Exception as exc:
        raise RaftDecodeError(f"invalid membership: {exc.__class__.__name__}: {exc}") from None
