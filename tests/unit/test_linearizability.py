"""The linearizability checker: hand-made histories, classic anomalies, and a property."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.linearizability import CAS, READ, WRITE, Op, check, check_key


def w(c: int, call: float, ret: float | None, v: object, key: str = "x") -> Op:
    return Op(client=c, key=key, kind=WRITE, call=call, ret=ret, value=v)


def r(c: int, call: float, ret: float | None, out: object, key: str = "x") -> Op:
    return Op(client=c, key=key, kind=READ, call=call, ret=ret, output=out)


def cas(c: int, call: float, ret: float | None, exp: object, new: object, out: object,
        key: str = "x") -> Op:
    return Op(client=c, key=key, kind=CAS, call=call, ret=ret, expected=exp, value=new,
              output=out)


# --- linearizable histories -------------------------------------------------------------


def test_empty_history_is_linearizable() -> None:
    assert check([]).ok


def test_sequential_history() -> None:
    h = [w(1, 0, 1, "a"), r(2, 2, 3, "a"), cas(1, 4, 5, "a", "b", True), r(2, 6, 7, "b")]
    assert check(h).ok


def test_read_of_initial_value() -> None:
    assert check([r(1, 0, 1, None), w(1, 2, 3, "a")]).ok


def test_concurrent_read_may_see_either_value() -> None:
    for seen in ("a", "b"):
        h = [w(1, 0, 1, "a"), w(2, 2, 10, "b"), r(3, 3, 4, seen)]
        assert check(h).ok, seen


def test_reads_may_order_concurrent_writes_either_way_but_consistently() -> None:
    # two concurrent writes; two later sequential reads see b then a: a was linearized last
    h = [w(1, 0, 5, "a"), w(2, 0, 5, "b"), r(3, 1, 2, "b"), r(3, 3, 4, "a")]
    assert check(h).ok


def test_equal_timestamps_count_as_concurrent() -> None:
    # the write returns at 5 and the read is called at 5: they may be ordered either way
    assert check([w(1, 0, 5, "a"), r(2, 5, 6, None)]).ok


def test_timed_out_write_may_take_effect_late() -> None:
    h = [w(1, 0, None, "a"), r(2, 1, 2, None), r(2, 100, 101, "a")]
    assert check(h).ok


def test_timed_out_write_may_never_take_effect() -> None:
    h = [w(1, 0, None, "a"), w(2, 1, 2, "b"), r(2, 100, 101, "b")]
    assert check(h).ok


def test_timed_out_cas_may_succeed_or_not() -> None:
    base = [w(1, 0, 1, "a"), cas(2, 2, None, "a", "b", None)]
    assert check([*base, r(3, 10, 11, "b")]).ok
    assert check([*base, r(3, 10, 11, "a")]).ok


def test_failed_cas_is_linearizable_when_value_differs() -> None:
    h = [w(1, 0, 1, "a"), cas(2, 2, 3, "z", "b", False), r(2, 4, 5, "a")]
    assert check(h).ok


def test_keys_are_independent() -> None:
    h = [w(1, 0, 1, "a", key="x"), w(1, 2, 3, "b", key="y"), r(2, 4, 5, "a", key="x"),
         r(2, 4, 5, "b", key="y")]
    res = check(h)
    assert res.ok and len(res.keys) == 2


# --- classic violations ------------------------------------------------------------------


def test_stale_read_is_caught() -> None:
    h = [w(1, 0, 1, "a"), w(1, 2, 3, "b"), r(2, 4, 5, "a")]
    res = check(h)
    assert not res.ok
    assert [k.key for k in res.violations] == ["x"]
    assert "not linearizable" in res.explain()


def test_lost_acknowledged_write_is_caught() -> None:
    # the write of b was acknowledged, yet a later read sees the initial value
    h = [w(1, 0, 1, "b"), r(2, 2, 3, None)]
    assert not check(h).ok


def test_read_of_a_value_never_written_is_caught() -> None:
    assert not check([w(1, 0, 1, "a"), r(2, 0, 5, "ghost")]).ok


def test_read_must_not_go_back_in_time() -> None:
    # concurrent write; a reader sees the new value, a later reader sees the old one
    h = [w(1, 0, 1, "a"), w(2, 2, 20, "b"), r(3, 3, 4, "b"), r(4, 5, 6, "a")]
    assert not check(h).ok


def test_two_successful_cas_from_same_value_is_caught() -> None:
    h = [w(1, 0, 1, "a"), cas(2, 2, 5, "a", "b", True), cas(3, 2, 5, "a", "c", True)]
    assert not check(h).ok


def test_cas_failing_although_value_matched_is_caught() -> None:
    h = [w(1, 0, 1, "a"), cas(2, 2, 3, "a", "b", False)]
    assert not check(h).ok


def test_cas_succeeding_on_wrong_value_is_caught() -> None:
    h = [w(1, 0, 1, "a"), cas(2, 2, 3, "q", "b", True)]
    assert not check(h).ok


def test_timed_out_write_cannot_take_effect_before_its_call() -> None:
    h = [r(2, 0, 1, "a"), w(1, 5, None, "a")]
    assert not check(h).ok


def test_timed_out_write_cannot_flicker() -> None:
    # once a later read has seen the new value, an even later read cannot see the old one
    h = [w(1, 0, 1, "a"), w(2, 2, None, "b"), r(3, 3, 4, "b"), r(3, 5, 6, "a")]
    assert not check(h).ok


def test_only_the_bad_key_is_reported() -> None:
    h = [w(1, 0, 1, "a", key="good"), r(2, 2, 3, "a", key="good"),
         w(1, 0, 1, "a", key="bad"), r(2, 2, 3, "zzz", key="bad")]
    res = check(h)
    assert [k.key for k in res.violations] == ["bad"]


def test_budget_exhaustion_is_reported_as_undecided_not_ok() -> None:
    ops = [w(i, 0, 100, i) for i in range(12)] + [r(99, 101, 102, "never")]
    res = check_key(ops, max_steps=50)
    assert res.ok is None


def test_op_returning_before_its_call_is_rejected() -> None:
    with pytest.raises(ValueError):
        w(1, 5, 4, "a")


# --- property: histories produced by a real sequential register are linearizable ---------


def _run_register(
    seed: int, n_ops: int, n_keys: int, timeout_p: float, width: float = 5.0
) -> tuple[list[Op], dict[str, object]]:
    """Execute operations atomically at distinct instants inside randomly sized windows.

    Linearization points are at least 0.01 apart; windows reach up to `width` either side.
    """
    rnd = random.Random(seed)
    state: dict[str, object] = {}
    ops: list[Op] = []
    t = 0.0
    for i in range(n_ops):
        t += 0.01 + rnd.random()
        key = f"k{rnd.randrange(n_keys)}"
        at = t  # the linearization point
        call = at - rnd.random() * width
        ret: float | None = at + rnd.random() * width
        if rnd.random() < timeout_p:
            ret = None
        kind = rnd.choice((READ, WRITE, CAS))
        cur = state.get(key)
        if kind == READ:
            ops.append(Op(client=i, key=key, kind=READ, call=call, ret=ret, output=cur))
        elif kind == WRITE:
            state[key] = i
            ops.append(Op(client=i, key=key, kind=WRITE, call=call, ret=ret, value=i))
        else:
            exp = cur if rnd.random() < 0.6 else rnd.choice([None, *range(i)])
            ok = exp == cur
            if ok:
                state[key] = i
            ops.append(Op(client=i, key=key, kind=CAS, call=call, ret=ret, expected=exp,
                          value=i, output=ok))
    return ops, state


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    n_ops=st.integers(1, 60),
    n_keys=st.integers(1, 3),
    timeout_p=st.sampled_from([0.0, 0.1, 0.3]),
)
def test_real_sequential_executions_are_linearizable(
    seed: int, n_ops: int, n_keys: int, timeout_p: float
) -> None:
    ops, _ = _run_register(seed, n_ops, n_keys, timeout_p)
    res = check(ops)
    assert res.ok, res.explain()


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32), n_ops=st.integers(1, 40))
def test_a_read_after_everything_must_see_exactly_the_final_value(seed: int, n_ops: int) -> None:
    """Without overlap or timeouts the final value is determined: any other must be rejected."""
    ops, state = _run_register(seed, n_ops, 1, 0.0, width=0.004)
    end = max(op.ret for op in ops if op.ret is not None) + 1
    final = state.get("k0")
    assert check([*ops, r(-1, end, end + 1, final, key="k0")]).ok
    for other in {None, *range(n_ops)} - {final}:
        assert not check([*ops, r(-1, end, end + 1, other, key="k0")]).ok, other
