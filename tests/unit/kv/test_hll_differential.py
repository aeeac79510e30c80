"""PFADD, PFCOUNT, PFMERGE and PFDEBUG against redis-server 7.0.15.

The same PFADD sequences run on both servers; the counts must be equal and so must the bytes
of every HLL (GET): the sparse opcodes (which depend on the order registers were raised in),
the promotion to dense, and the cached cardinality in the header."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from data_oracle import Pair, redis_pair
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.hypothesis_budget import scaled_examples

pytestmark = pytest.mark.differential

KEYS = [b"h1", b"h2", b"h3"]


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    yield from redis_pair()


def _batch(start: int, n: int, prefix: bytes) -> list[bytes]:
    return [prefix + str(i).encode() for i in range(start, start + n)]


key = st.sampled_from([*KEYS, b"nokey", b"str", b"lst", b"fake"])
element = st.one_of(st.binary(max_size=20), st.integers(0, 5000).map(lambda n: str(n).encode()))
batch = st.tuples(st.integers(0, 100_000), st.integers(1, 700), st.sampled_from([b"", b"e:"]))
command = st.one_of(
    st.tuples(key, st.lists(element, max_size=6)).map(lambda t: [b"PFADD", t[0], *t[1]]),
    st.tuples(key, batch).map(lambda t: [b"PFADD", t[0], *_batch(*t[1])]),
    key.map(lambda k: [b"PFCOUNT", k]),
    st.lists(key, min_size=2, max_size=3).map(lambda ks: [b"PFCOUNT", *ks]),
    st.lists(key, min_size=1, max_size=3).map(lambda ks: [b"PFMERGE", *ks]),
    st.tuples(st.sampled_from([b"ENCODING", b"DECODE", b"TODENSE", b"bogus"]), key).map(
        lambda t: [b"PFDEBUG", *t]
    ),
    key.map(lambda k: [b"GET", k]),
)


def _setup(pair: Pair) -> None:
    pair.reset()
    pair.check([b"SET", b"str", b"not an hll at all"])
    pair.check([b"RPUSH", b"lst", b"x"])
    # a sparse HLL whose opcodes cover too few registers
    pair.check([b"SET", b"fake", b"HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x7f\x00"])


@settings(
    max_examples=scaled_examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(steps=st.lists(st.tuples(st.sampled_from([2, 3]), command), max_size=15))
def test_hll_commands_and_bytes_match_redis_server(
    pair: Pair, steps: list[tuple[int, list[bytes]]]
) -> None:
    _setup(pair)
    for protocol, argv in steps:
        pair.check(argv, protocol)
    for k in KEYS:
        pair.check([b"GET", k])


def test_growing_hll_matches_redis_server_through_dense_promotion(pair: Pair) -> None:
    """One element at a time at first (the sparse in-place updates), then batches well past
    the switch to dense; bytes and counts compared at every step."""
    _setup(pair)
    for i in range(300):
        pair.check([b"PFADD", b"h1", b"x%d" % i])
        if i % 7 == 0:
            pair.check([b"PFCOUNT", b"h1"])
            pair.check([b"GET", b"h1"])
    for start in range(300, 30_000, 1_500):
        pair.check([b"PFADD", b"h1", *_batch(start, 1_500, b"x")])
        pair.check([b"PFADD", b"h2", *_batch(start * 3, 500, b"y")])
        pair.check([b"GET", b"h1"])
        pair.check([b"PFCOUNT", b"h1"], 3)
        pair.check([b"PFCOUNT", b"h1", b"h2"])
        pair.check([b"PFMERGE", b"h3", b"h2"])
        pair.check([b"GET", b"h3"])
    pair.check([b"PFDEBUG", b"ENCODING", b"h1"])
    pair.check([b"PFDEBUG", b"GETREG", b"h1"])
    pair.check([b"PFMERGE", b"h2", b"h1", b"nokey"])
    pair.check([b"GET", b"h2"])
    pair.check([b"PFDEBUG", b"GETREG", b"h2"], 3)
