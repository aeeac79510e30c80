"""Byte encodings of what storage keeps: hard state, snapshot metadata, log entries.

CBOR (as everywhere in Aspen) with a version number, so that a later format can still read
an older one or refuse it clearly.
"""

from __future__ import annotations

import struct
from typing import Any

import cbor2

from aspen.raft.types import Entry, EntryKind, HardState, Membership, SnapshotMeta

from .base import StorageCorrupted

_VERSION = 1
_ENTRY_HEAD = struct.Struct(">QB")  # term, kind; the data follows


def encode_hard_state(hs: HardState) -> bytes:
    return cbor2.dumps([_VERSION, hs.term, hs.vote, hs.commit])


def decode_hard_state(raw: bytes) -> HardState:
    version, term, vote, commit = _load_list(raw, 4, "hard state")
    _check_version(version, "hard state")
    return HardState(term=term, vote=vote, commit=commit)


def encode_position(index: int, term: int) -> bytes:
    return cbor2.dumps([index, term])


def decode_position(raw: bytes) -> tuple[int, int]:
    index, term = _load_list(raw, 2, "log position")
    return int(index), int(term)


def encode_membership(m: Membership) -> Any:
    return [sorted(m.voters), sorted(m.learners), sorted(m.voters_outgoing)]


def decode_membership(obj: Any) -> Membership:
    voters, learners, outgoing = obj
    return Membership(voters=voters, learners=learners, voters_outgoing=outgoing)


def encode_snapshot_meta(meta: SnapshotMeta) -> bytes:
    return cbor2.dumps([_VERSION, meta.index, meta.term, encode_membership(meta.membership)])


def decode_snapshot_meta(raw: bytes) -> SnapshotMeta:
    version, index, term, membership = _load_list(raw, 4, "snapshot meta")
    _check_version(version, "snapshot meta")
    try:
        if not (isinstance(index, int) and isinstance(term, int)):
            raise TypeError(f"index {index!r}, term {term!r}")
        return SnapshotMeta(index=index, term=term, membership=decode_membership(membership))
    except (TypeError, ValueError) as e:
        raise StorageCorrupted(f"malformed snapshot meta: {e}") from e


def encode_entry_value(entry: Entry) -> bytes:
    """An entry without its index (the index is the key)."""
    return _ENTRY_HEAD.pack(entry.term, int(entry.kind)) + entry.data


def decode_entry_value(index: int, raw: bytes | memoryview) -> Entry:
    term, kind = _ENTRY_HEAD.unpack_from(raw)
    return Entry(index=index, term=term, kind=EntryKind(kind), data=bytes(raw[_ENTRY_HEAD.size :]))


def entry_term_from_value(raw: bytes | memoryview) -> int:
    term: int = _ENTRY_HEAD.unpack_from(raw)[0]
    return term


def _load_list(raw: bytes, n: int, what: str) -> list[Any]:
    try:
        obj = cbor2.loads(raw)
    except Exception as e:
        raise StorageCorrupted(f"undecodable {what}: {e}") from e
    if not isinstance(obj, list) or len(obj) != n:
        raise StorageCorrupted(f"malformed {what}: {obj!r}")
    return obj


def _check_version(version: Any, what: str) -> None:
    if version != _VERSION:
        raise StorageCorrupted(f"{what} has version {version!r}; this build reads {_VERSION}")
