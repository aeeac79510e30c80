"""The keyspace's used-memory figure stays equal to the sum of its keys' estimates.

`Keyspace.used_memory` is maintained incrementally (per write, per expiry, per flush); any
command path that changes a key without being counted would make it drift from the full
recount. Generated command sequences over every type, MULTI, scripts (whose redis.calls
are counted one by one, declared keys or not), expiry and snapshots check that it does not.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aspen.cluster.entry import OpItem, RequestId
from aspen.cluster.maxmemory import OOM_OP, MemoryGuard
from aspen.kv.keyspace import Keyspace
from aspen.kv.memory import AccessHints, approx_size, choose_victims
from aspen.kv.ops import ReadOp, TxnOp, WriteOp
from harness.hypothesis_budget import scaled_examples

KEYS = [b"a", b"b", b"c", b"{x}d"]
VALS = [b"1", b"22", b"hello", b"x" * 70, b"-5"]

k = st.sampled_from(KEYS)
v = st.sampled_from(VALS)


def _cmds() -> st.SearchStrategy[list[bytes]]:
    c = st.just
    return st.one_of(
        st.tuples(c(b"SET"), k, v), st.tuples(c(b"APPEND"), k, v), st.tuples(c(b"INCR"), k),
        st.tuples(c(b"DEL"), k, k), st.tuples(c(b"UNLINK"), k),
        st.tuples(c(b"RPUSH"), k, v, v), st.tuples(c(b"LPOP"), k),
        st.tuples(c(b"LMOVE"), k, k, c(b"LEFT"), c(b"RIGHT")),
        st.tuples(c(b"SADD"), k, v, v), st.tuples(c(b"SREM"), k, v),
        st.tuples(c(b"SMOVE"), k, k, v), st.tuples(c(b"SUNIONSTORE"), k, k, k),
        st.tuples(c(b"HSET"), k, v, v), st.tuples(c(b"HDEL"), k, v),
        st.tuples(c(b"ZADD"), k, c(b"1"), v), st.tuples(c(b"ZINCRBY"), k, c(b"2"), v),
        st.tuples(c(b"ZUNIONSTORE"), k, c(b"2"), k, k),
        st.tuples(c(b"XADD"), k, c(b"*"), v, v),
        st.tuples(c(b"RENAME"), k, k), st.tuples(c(b"COPY"), k, k, c(b"REPLACE")),
        st.tuples(c(b"PEXPIRE"), k, st.sampled_from([b"1", b"1", b"100000"])),
        st.tuples(c(b"SETRANGE"), k, c(b"3"), v), st.tuples(c(b"GETDEL"), k),
        st.tuples(c(b"PFADD"), k, v),
        # a script writing the key it declared and keys it did not
        st.tuples(c(b"EVAL"), c(b"redis.call('SET', KEYS[1], ARGV[1]) "
                              b"redis.call('RPUSH', ARGV[1] .. 'l', ARGV[1])"), c(b"1"), k, v),
        st.tuples(c(b"FLUSHALL")), st.tuples(c(b"FLUSHDB")),
        st.tuples(c(b"MOVE"), k, st.sampled_from([b"0", b"2"])),
        st.tuples(c(b"SWAPDB"), c(b"0"), c(b"2")),
        st.tuples(c(b"COPY"), k, k, c(b"DB"), st.sampled_from([b"0", b"2"])),
    ).map(list)


def _recount(ks: Keyspace) -> int:
    return sum(approx_size(key, value) for key, value in ks._data.items())


def _recount_every_db(ks: Keyspace) -> int:
    parked = sum(approx_size(key, value)
                 for db in ks._parked.values() for key, value in db._data.items())
    return _recount(ks) + parked


@pytest.mark.differential
@settings(max_examples=scaled_examples(150), deadline=None)
@given(st.lists(st.one_of(_cmds(), st.lists(_cmds(), min_size=1, max_size=3).map(tuple)),
                max_size=40),
       st.integers(0, 2**32))
def test_used_memory_is_the_sum_of_the_key_estimates(ops: list[object], seed: int) -> None:
    ks = Keyspace()
    ks.set_memory_tracking(True)
    rng = random.Random(seed)
    now = 1_000_000
    for op in ops:
        now += rng.choice([0, 1, 3, 50])
        if isinstance(op, tuple):  # MULTI/EXEC
            txn = TxnOp(tuple(tuple(c) for c in op), db=rng.choice([0, 2]))
            ks.execute(txn, now, rng.randrange(2**32))
        else:
            ks.execute(WriteOp(op, rng.choice([0, 2])), now,  # type: ignore[arg-type]
                       rng.randrange(2**32))
        if rng.random() < 0.5:
            ks.expire_some(now, 2)
        assert ks.total_used_memory() == _recount_every_db(ks)
    restored = Keyspace.restore(ks.snapshot())
    restored.set_memory_tracking(True)
    assert restored.total_used_memory() == _recount_every_db(restored) == _recount_every_db(ks)


def test_estimates_grow_with_the_contents() -> None:
    ks = Keyspace()
    ks.set_memory_tracking(True)
    ks.execute(WriteOp([b"RPUSH", b"l", *[b"x" * 100] * 1000]), 1, 0)
    ks.execute(WriteOp([b"SET", b"s", b"y" * 100_000]), 1, 0)
    assert 100_000 < approx_size(b"l", ks._data[b"l"]) < 200_000
    assert 100_000 < approx_size(b"s", ks._data[b"s"]) < 100_200
    ks.execute(WriteOp([b"FLUSHALL"]), 1, 0)
    assert ks.used_memory == 0


def test_lfu_counts_grow_logarithmically_and_decay() -> None:
    hints = AccessHints(lfu=True)
    for _ in range(100):
        hints.touch([b"hot"], 0)
    hints.touch([b"cold"], 0)
    assert hints.frequency(b"hot", 0) > hints.frequency(b"cold", 0) >= 5
    assert hints.frequency(b"hot", 0) < 40  # logarithmic (lfu-log-factor 10)
    later = hints.frequency(b"hot", 10 * 60_000)  # ten minutes: minus one per minute
    assert later == max(hints.frequency(b"hot", 0) - 10, 0)


def test_reads_touch_the_lru_record_except_the_no_touch_ones() -> None:
    ks = Keyspace()
    ks.hints = AccessHints(lfu=False)
    ks.execute(WriteOp([b"SET", b"k", b"v"]), 1000, 0)
    ks.execute(ReadOp([b"TTL", b"k"]), 9000, 0)
    ks.execute(ReadOp([b"TYPE", b"k"]), 9000, 0)
    assert ks.execute(ReadOp([b"OBJECT", b"IDLETIME", b"k"]), 11_000, 0) == 10
    ks.execute(ReadOp([b"GET", b"k"]), 11_000, 0)
    assert ks.execute(ReadOp([b"OBJECT", b"IDLETIME", b"k"]), 11_500, 0) == 0
    ks.execute(WriteOp([b"DEL", b"k"]), 12_000, 0)
    assert b"k" not in ks.hints.last


def _guard(policy: str, maxmemory: int) -> tuple[MemoryGuard, Keyspace, list[int]]:
    ks = Keyspace()
    guard = MemoryGuard(maxmemory, policy, rng=random.Random(1))
    guard.attach(ks)
    return guard, ks, [0]


def _item(argv: list[bytes], seq: int = 1) -> OpItem:
    return OpItem(RequestId(1, 1, seq), 0, WriteOp(tuple(argv)))


def test_guard_noeviction_refuses_only_denyoom_writes() -> None:
    guard, ks, _ = _guard("noeviction", 500)
    for i in range(10):
        ks.execute(WriteOp([b"SET", b"k%d" % i, b"x" * 100]), 1, 0)
    items = [_item([b"SET", b"n", b"v"]), _item([b"DEL", b"k1"]), _item([b"EXPIRE", b"k2", b"9"])]
    out = guard.admit(items, ks, 1, 1, lambda: RequestId(1, 1, 99), 0)  # type: ignore[arg-type]
    assert [i.op for i in out] == [OOM_OP, items[1].op, items[2].op]  # type: ignore[union-attr]
    assert ks.execute(OOM_OP, 1, 0).message.startswith("OOM ")  # type: ignore[attr-defined]


def test_guard_evicts_enough_then_lets_writes_through() -> None:
    guard, ks, _ = _guard("allkeys-random", 1000)
    for i in range(20):
        ks.execute(WriteOp([b"SET", b"k%d" % i, b"x" * 100]), 1, 0)
    over = ks.used_memory - 1000
    out = guard.admit([_item([b"SET", b"n", b"v"])], ks, 1, 1,
                      lambda: RequestId(1, 1, 99), 0)
    evict = out[0].op  # type: ignore[union-attr]
    assert evict.argv[0] == b"ASPEN.EVICT"  # type: ignore[union-attr]
    assert out[1] == _item([b"SET", b"n", b"v"])
    freed = sum(approx_size(k, ks._data[k]) for k in evict.argv[1:])  # type: ignore[union-attr]
    assert freed >= over
    # while that eviction is in flight, nothing more is chosen for the same excess
    again = guard.admit([_item([b"SET", b"m", b"v"], 2)], ks, 1, 1,
                        lambda: RequestId(1, 1, 100), 0)
    assert [i.op.argv[0] for i in again] == [b"SET"]  # type: ignore[union-attr]
    n = ks.execute(evict, 2, 0)
    assert n == len(evict.argv) - 1 and ks.evicted_keys == n  # type: ignore[union-attr]
    assert ks.used_memory <= 1000


def test_volatile_ttl_picks_the_nearest_deadline() -> None:
    ks = Keyspace()
    for i in range(50):
        ks.execute(WriteOp([b"SET", b"k%d" % i, b"v", b"PX", b"%d" % (10_000 + i)]), 1, 0)
        ks.execute(WriteOp([b"SET", b"p%d" % i, b"v"]), 1, 0)
    victims = choose_victims(ks, "volatile-ttl", 1, 1, random.Random(3), {}, samples=50)
    assert len(victims) == 1 and victims[0][0].startswith(b"k")
    assert int(victims[0][0][1:]) < 10  # the best of 50 samples: among the nearest
    none = choose_victims(Keyspace(), "volatile-lru", 100, 1, random.Random(3), {})
    assert none == []


def test_active_expiry_and_lazy_expiry_are_counted() -> None:
    ks = Keyspace()
    ks.set_memory_tracking(True)
    for i in range(10):
        ks.execute(WriteOp([b"SET", b"k%d" % i, b"x" * 50, b"PX", b"10"]), 1000, 0)
    ks.execute(WriteOp([b"RPUSH", b"l", b"a", b"b"]), 1000, 0)
    assert ks.expire_some(2000, 5) and ks.used_memory == _recount(ks)
    ks.execute(WriteOp([b"APPEND", b"k9", b"new"]), 2000, 0)  # k9 expired: dropped, recreated
    assert ks.used_memory == _recount(ks)
    ks.expire_some(2000, 100)
    assert ks.used_memory == _recount(ks) == approx_size(b"l", ks._data[b"l"]) + approx_size(
        b"k9", b"new")
