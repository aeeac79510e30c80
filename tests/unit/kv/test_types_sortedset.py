"""SortedPairs against a plain sorted list, with tiny sublists so splits and merges happen."""

from __future__ import annotations

import bisect

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aspen.kv import sortedset
from aspen.kv.sortedset import SortedPairs, by_member, by_score

scores = st.sampled_from([0.0, -0.0, 1.0, 1.5, -2.0, float("inf"), float("-inf"), 3.25])
members = st.binary(max_size=3)
ops = st.lists(
    st.tuples(st.sampled_from(["add", "remove", "pop"]), scores, members, st.integers(0, 40)),
    max_size=200,
)


@pytest.fixture
def small_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sortedset, "LOAD", 4)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=ops, probe_score=scores, probe_member=members)
def test_matches_sorted_list(
    small_load: None,
    ops: list[tuple[str, float, bytes, int]],
    probe_score: float,
    probe_member: bytes,
) -> None:
    sp = SortedPairs()
    model: list[tuple[float, bytes]] = []
    for kind, score, member, n in ops:
        item = (score, member)
        if kind == "add" and item not in model:
            sp.add(item)
            bisect.insort(model, item)
        elif kind == "remove" and model:
            victim = model[n % len(model)]
            sp.remove(victim)
            model.remove(victim)
        elif kind == "pop":
            start = n % (len(model) + 1)
            stop = start + n % 5
            assert sp.pop_range(start, stop) == model[start:stop]
            del model[start:stop]
        sp.check()
        assert list(sp.items()) == model
    for i, item in enumerate(model):
        assert sp[i] == item
        assert sp.rank(item) == i
    assert sp.bisect(probe_score, False, by_score) == bisect.bisect_left(
        model, probe_score, key=by_score
    )
    assert sp.bisect(probe_score, True, by_score) == bisect.bisect_right(
        model, probe_score, key=by_score
    )
    assert sp.bisect((probe_score, probe_member), False, None) == bisect.bisect_left(
        model, (probe_score, probe_member)
    )
    if all(s == model[0][0] for s, _ in model):  # lex bisection assumes one score
        assert sp.bisect(probe_member, True, by_member) == bisect.bisect_right(
            model, probe_member, key=by_member
        )
    n = len(model)
    for start in range(0, n + 2, 3):
        for stop in range(start, n + 3, 4):
            assert list(sp.islice(start, stop)) == model[start:stop]
            assert list(sp.islice_reversed(start, stop)) == model[start:stop][::-1]


def test_from_sorted_then_updates(small_load: None) -> None:
    items = [(float(i // 3), b"m%03d" % i) for i in range(50)]
    sp = SortedPairs.from_sorted(list(items))
    sp.check()
    sp.remove(items[10])
    sp.add((-1.0, b"zzz"))
    sp.check()
    assert sp[0] == (-1.0, b"zzz")
    assert sp.rank(items[11]) == 11
    with pytest.raises(IndexError):
        sp[len(sp)]
