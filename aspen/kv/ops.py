"""The operations a session hands to an executor.

A session turns client commands into one of these; the executor (locally `LocalExecutor`, in the
cluster the Raft apply loop) runs it with `Keyspace.execute`. Writes and transactions travel
through the replicated log, so each op is self-contained (the full argv, nothing that refers to
connection state) and has a compact CBOR encoding with a version tag.

Every op carries the database it runs in (`db`, the session's SELECTed one, default 0). The
encoding appends it only when it is not 0, so an op of database 0 has the same bytes as before
databases existed and every op already written (logs, snapshots of forwarded ops) decodes as
database 0.

The ops are plain classes with `Final` fields (immutable to the type checker; equal, hashed
and shown as the attrs classes they were): a session builds one per command, and in the
compiled build a native class costs a fraction of an attrs `__init__`.
"""

from __future__ import annotations

from typing import ClassVar, Final

import cbor2

_VERSION = 1
_READ, _WRITE, _TXN = 0, 1, 2


class _CommandOp:
    """One command and its database: what `ReadOp` and `WriteOp` share (they differ only by
    their tag in the encoding). Equal only to an op of the very same class."""

    __slots__ = ("argv", "db")
    _TAG: ClassVar[int]

    def __init__(self, argv: tuple[bytes, ...] | list[bytes], db: int = 0) -> None:
        self.argv: Final = argv
        self.db: Final = db

    def encode(self) -> bytes:
        return cbor2.dumps(_with_db([_VERSION, self._TAG, list(self.argv)], self.db))

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _CommandOp)
        return self.argv == other.argv and self.db == other.db

    def __hash__(self) -> int:
        return hash((self._TAG, tuple(self.argv), self.db))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(argv={self.argv!r}, db={self.db!r})"


class ReadOp(_CommandOp):
    """A read-only command; never mutates the keyspace (it may run after ReadIndex)."""

    __slots__ = ()
    _TAG = _READ


class WriteOp(_CommandOp):
    """One write command; applied on every replica in log order."""

    __slots__ = ()
    _TAG = _WRITE


class TxnOp:
    """MULTI ... EXEC as one atomic op.

    `watches` holds (key, watch token) pairs taken at WATCH time, or (key, token, db) for a
    key WATCHed in another database than 0; if any token differs when the op is applied,
    nothing runs and the reply is a null array. `db` is the database the transaction starts
    in; a queued `SELECT n` among `commands` switches it for the commands after it.
    """

    __slots__ = ("commands", "db", "watches")

    def __init__(self, commands: tuple[tuple[bytes, ...], ...],
                 watches: tuple[Watch, ...] = (), db: int = 0) -> None:
        self.commands: Final = commands
        self.watches: Final = watches
        self.db: Final = db

    def encode(self) -> bytes:
        return cbor2.dumps(
            _with_db(
                [_VERSION, _TXN, [list(c) for c in self.commands],
                 [list(w) for w in self.watches]],
                self.db,
            )
        )

    def __eq__(self, other: object) -> bool:
        if type(other) is not TxnOp:
            return NotImplemented
        return (self.commands == other.commands and self.watches == other.watches
                and self.db == other.db)

    def __hash__(self) -> int:
        return hash((_TXN, self.commands, self.watches, self.db))

    def __repr__(self) -> str:
        return (f"TxnOp(commands={self.commands!r}, watches={self.watches!r}, "
                f"db={self.db!r})")


Watch = tuple[bytes, int] | tuple[bytes, int, int]
"""A WATCHed key and its token, plus its database when that is not 0."""

Op = ReadOp | WriteOp | TxnOp


def _with_db(wire: list[object], db: int) -> list[object]:
    if db:
        wire.append(db)
    return wire


def watch_db(w: Watch) -> int:
    return w[2] if len(w) == 3 else 0


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
    kind, n = obj[1], len(obj)
    if kind == _WRITE and n in (3, 4):
        return write_from_wire(obj[2], db_from_wire(obj[3]) if n == 4 else 0)
    if kind == _READ and n in (3, 4):
        return ReadOp(_argv(obj[2]), db_from_wire(obj[3]) if n == 4 else 0)
    if kind == _TXN and n in (4, 5):
        return txn_from_wire(obj[2], obj[3], db_from_wire(obj[4]) if n == 5 else 0)
    raise OpDecodeError(f"unknown op kind {kind!r}")


def db_from_wire(value: object) -> int:
    """A database index as encoded (present only when not 0)."""
    if type(value) is not int or value <= 0:
        raise OpDecodeError(f"bad database index {value!r}")
    return value


def write_from_wire(argv: object, db: int = 0) -> WriteOp:
    """A WriteOp from its argv as CBOR decoded it (a list that must hold only bytes)."""
    return WriteOp(_argv(argv), db)


def txn_from_wire(commands: object, watches: object, db: int = 0) -> TxnOp:
    """A TxnOp from its CBOR-decoded parts: commands (lists of bytes), watches ([key, token]
    pairs, or [key, token, db])."""
    if type(commands) is not list or type(watches) is not list:
        raise OpDecodeError("bad transaction: commands and watches must be lists")
    cmds = tuple([_argv(c) for c in commands])
    pairs: list[Watch] = []
    for w in watches:
        if (type(w) is not list or len(w) not in (2, 3) or type(w[0]) is not bytes
                or type(w[1]) is not int):
            raise OpDecodeError(f"bad transaction: bad watch {w!r}")
        pairs.append((w[0], w[1]) if len(w) == 2 else (w[0], w[1], db_from_wire(w[2])))
    return TxnOp(cmds, tuple(pairs), db)


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
        return op if type(argv) is tuple else WriteOp(tuple(argv), op.db)
    commands = []
    for c in op.commands:
        for a in c:
            if type(a) is not bytes:
                return None
        commands.append(c if type(c) is tuple else tuple(c))
    for w in op.watches:
        if type(w[0]) is not bytes or type(w[1]) is not int or type(watch_db(w)) is not int:
            return None
    return TxnOp(tuple(commands), tuple([tuple(w) for w in op.watches]), op.db)  # type: ignore[misc]


def _argv(value: object) -> tuple[bytes, ...]:
    # a plain loop: a generator per op was a visible share of a follower's apply
    if type(value) is not list:
        raise OpDecodeError("argv must be a list of bytes")
    for a in value:
        if type(a) is not bytes:
            raise OpDecodeError("argv must be a list of bytes")
    return tuple(value)
