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
    if type(obj) is not list or len(obj) < 3 or obj[0] != _VERSION:
        raise OpDecodeError("unknown op encoding")
    kind = obj[1]
    if kind == _WRITE and len(obj) == 3:
        return write_from_wire(obj[2])
    if kind == _READ and len(obj) == 3:
        return ReadOp(_argv(obj[2]))
    if kind == _TXN and len(obj) == 4:
        return txn_from_wire(obj[2], obj[3])
    raise OpDecodeError(f"unknown op kind {kind!r}")


def write_from_wire(argv: object) -> WriteOp:
    """A WriteOp from its argv as CBOR decoded it (a list that must hold only bytes)."""
    return WriteOp(_argv(argv))


def txn_from_wire(commands: object, watches: object) -> TxnOp:
    """A TxnOp from its two CBOR-decoded parts: commands (lists of bytes), watches
    ([key, token] pairs)."""
    if type(commands) is not list or type(watches) is not list:
        raise OpDecodeError("bad transaction: commands and watches must be lists")
    cmds = tuple([_argv(c) for c in commands])
    pairs = []
    for w in watches:
        if type(w) is not list or len(w) != 2 or type(w[0]) is not bytes or type(w[1]) is not int:
            raise OpDecodeError(f"bad transaction: bad watch {w!r}")
        pairs.append((w[0], w[1]))
    return TxnOp(cmds, tuple(pairs))


def normalised(op: WriteOp | TxnOp) -> WriteOp | TxnOp | None:
    """`op` exactly as decoding its encoding gives it back (tuples of bytes), or None if it
    holds something its encoding would not keep (then only the bytes can stand for it).

    A replica that holds the op object applies it without a decode; it must be the very
    same value every other replica decodes."""
    if isinstance(op, WriteOp):
        argv = op.argv
        for a in argv:
            if type(a) is not bytes:
                return None
        return op if type(argv) is tuple else WriteOp(tuple(argv))
    commands = []
    for c in op.commands:
        for a in c:
            if type(a) is not bytes:
                return None
        commands.append(c if type(c) is tuple else tuple(c))
    for key, token in op.watches:
        if type(key) is not bytes or type(token) is not int:
            return None
    return TxnOp(tuple(commands), tuple([(k, t) for k, t in op.watches]))


def _argv(value: object) -> tuple[bytes, ...]:
    # a plain loop: a generator per op was a visible share of a follower's apply
    if type(value) is not list:
        raise OpDecodeError("argv must be a list of bytes")
    for a in value:
        if type(a) is not bytes:
            raise OpDecodeError("argv must be a list of bytes")
    return tuple(value)
