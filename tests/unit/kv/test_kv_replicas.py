"""Replicas agree: the same ops applied to a fresh keyspace, and to one restored from a
snapshot taken midway, give the same replies and the same digest (State Machine Safety's
precondition on the kv side)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from kv_commandgen import expiry_commands, key_commands, string_commands

from aspen.kv.commands import Route, lookup
from aspen.kv.keyspace import Keyspace
from aspen.kv.ops import ReadOp, TxnOp, WriteOp

T0 = 1_700_000_000_000

step = st.tuples(
    st.one_of(string_commands(False, T0), key_commands(False, T0), expiry_commands(False, T0)),
    st.integers(0, 1500),  # ms the leader clock moves before this entry
)


def as_op(argv: list[bytes]) -> ReadOp | WriteOp | None:
    spec = lookup(argv[0])
    if spec is None or not spec.arity_ok(len(argv)):
        return None
    if spec.route is Route.WRITE:
        return WriteOp(tuple(argv))
    if spec.route is Route.READ:
        return ReadOp(tuple(argv))
    return None


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(step, max_size=60), cut=st.integers(0, 60), expire_every=st.integers(2, 9))
def test_restored_replica_stays_identical(
    steps: list[tuple[list[bytes], int]], cut: int, expire_every: int
) -> None:
    a, b = Keyspace(), Keyspace()
    now = T0
    for i, (argv, dt) in enumerate(steps):
        if i == cut:
            b = Keyspace.restore(b.snapshot())
            assert b.digest() == a.digest()
        now += dt
        op = as_op(argv)
        if op is None:
            continue
        if i % expire_every == 0:  # the leader's active-expiry entry, applied by both
            assert a.expire_some(now, 2) == b.expire_some(now, 2)
        if i % 7 == 3:  # sometimes as a one-command transaction
            op = TxnOp((tuple(argv),), ())
        ra, rb = a.execute(op, now, seed=i), b.execute(op, now, seed=i)
        if argv[0].lower() != b"randomkey":
            assert ra == rb, argv
    assert a.digest() == b.digest()
    assert a.snapshot() == Keyspace.restore(a.snapshot()).snapshot()
