"""The operations a session hands to an executor.

A session turns client commands into one of these; the executor (locally `LocalExecutor`, in the
cluster the Raft apply loop) runs it with `Keyspace.execute`. Writes and transactions travel
through the replicated log, so each op is self-contained (the full argv, nothing that refers to
connection state) and has a compact CBOR encoding with a version tag.
"""

from __future__ import annotations

import attrs
import cbor2

_VERSION = 1
_READ, _WRITE, _TXN = 0, 1, 2


@attrs.frozen(slots=True)
class ReadOp:
    """A read-only command; never mutates the keyspace (it may run after ReadIndex)."""

    argv: tuple[bytes, ...] | list[bytes]

    def encode(self) -> bytes:
        return cbor2.dumps([_VERSION, _READ, list(self.argv)])


@attrs.frozen(slots=True)
class WriteOp:
    """One write command; applied on every replica in log order."""

    argv: tuple[bytes, ...] | list[bytes]

    def encode(self) -> bytes:
        return cbor2.dumps([_VERSION, _WRITE, list(self.argv)])


@attrs.frozen(slots=True)
class TxnOp:
    """MULTI ... EXEC as one atomic op.

    `watches` holds (key, watch token) pairs taken at WATCH time; if any token differs when the
    op is applied, nothing runs and the reply is a null array.
    """

    commands: tuple[tuple[bytes, ...], ...]
    watches: tuple[tuple[bytes, int], ...] = ()

    def encode(self) -> bytes:
        return cbor2.dumps(
            [_VERSION, _TXN, [list(c) for c in self.commands], [list(w) for w in self.watches]]
        )


Op = ReadOp | WriteOp | TxnOp


class OpDecodeError(ValueError):
    """Raised for bytes that are not an encoded op of a version we understand."""


def decode(data: bytes) -> Op:
    """Inverse of `encode()` for all three op kinds."""
    try:
        obj = cbor2.loads(data)
    except Exception as exc:  # cbor2 raises several types; normalise them
        raise OpDecodeError(f"not CBOR: {exc}") from exc
    if not isinstance(obj, list) or len(obj) < 3 or obj[0] != _VERSION:
        raise OpDecodeError("unknown op encoding")
    kind = obj[1]
    if kind in (_READ, _WRITE):
        argv = obj[2]
        if not isinstance(argv, list) or not all(isinstance(a, bytes) for a in argv):
            raise OpDecodeError("argv must be a list of bytes")
        return ReadOp(tuple(argv)) if kind == _READ else WriteOp(tuple(argv))
    if kind == _TXN and len(obj) == 4:
        cmds, watches = obj[2], obj[3]
        try:
            commands = tuple(tuple(_check_bytes(a) for a in c) for c in cmds)
            pairs = tuple((_check_bytes(k), _check_int(v)) for k, v in watches)
        except (TypeError, ValueError) as exc:
            raise OpDecodeError(f"bad transaction: {exc}") from exc
        return TxnOp(commands, pairs)
    raise OpDecodeError(f"unknown op kind {kind!r}")


def _check_bytes(value: object) -> bytes:
    if not isinstance(value, bytes):
        raise TypeError("expected bytes")
    return value


def _check_int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("expected int")
    return value
