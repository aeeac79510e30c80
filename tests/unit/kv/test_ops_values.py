"""The ops as values (issue 20, round 3: plain classes with Final fields, no longer attrs): equal
when kind and fields are, hashed alike when equal, shown as before, and an op of one kind is
never equal to an op of another with the same fields."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aspen.kv.ops import ReadOp, TxnOp, WriteOp, decode, normalised

argvs = st.lists(st.binary(max_size=8), min_size=1, max_size=5)
dbs = st.integers(min_value=0, max_value=15)


@given(argvs, dbs)
def test_read_and_write_ops_are_values(argv: list[bytes], db: int) -> None:
    for kind in (ReadOp, WriteOp):
        a, b = kind(tuple(argv), db), kind(tuple(argv), db)
        assert a == b and (a != b) is False and hash(a) == hash(b)
        assert a != kind(tuple(argv), db + 1)
        assert a != kind((*argv, b"x"), db)
        assert kind(list(argv), db) == kind(list(argv), db)  # (a list argv compares too)
    assert ReadOp(tuple(argv), db) != WriteOp(tuple(argv), db)
    assert WriteOp(tuple(argv), db) != tuple(argv)


@given(argvs, dbs)
def test_an_op_survives_its_encoding_and_normalising_keeps_it_equal(
    argv: list[bytes], db: int
) -> None:
    op = WriteOp(argv, db)
    held = normalised(op)
    assert held == decode(op.encode()) == WriteOp(tuple(argv), db)
    assert decode(ReadOp(argv, db).encode()) == ReadOp(tuple(argv), db)


def test_transactions_compare_by_commands_watches_and_database() -> None:
    cmds = ((b"SET", b"k", b"v"), (b"GET", b"k"))
    t = TxnOp(cmds, ((b"k", 3),), 2)
    assert t == TxnOp(cmds, ((b"k", 3),), 2) and hash(t) == hash(TxnOp(cmds, ((b"k", 3),), 2))
    assert t != TxnOp(cmds, ((b"k", 4),), 2) and t != TxnOp(cmds, ((b"k", 3),), 0)
    assert t != TxnOp(cmds[:1], ((b"k", 3),), 2)
    assert decode(t.encode()) == t


def test_the_repr_names_the_fields_as_attrs_did() -> None:
    assert repr(WriteOp([b"SET", b"k", b"v"])) == "WriteOp(argv=[b'SET', b'k', b'v'], db=0)"
    assert repr(ReadOp((b"GET", b"k"), 3)) == "ReadOp(argv=(b'GET', b'k'), db=3)"
    assert repr(TxnOp(((b"PING",),))) == "TxnOp(commands=((b'PING',),), watches=(), db=0)"
