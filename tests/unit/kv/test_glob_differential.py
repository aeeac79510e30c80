"""The one glob matcher (`aspen.kv.glob`) against redis-server 7.0.15, and its time bound.

For generated patterns and strings (the bytes that mean something to the matcher, high bytes
that C compares as negative chars, and adversarial star-heavy shapes) the test asks a real
redis-server:
- KEYS pattern, over keys it SET (case-sensitive; Aspen's KEYS handler runs on a keyspace
  holding the same keys, the `*` allkeys shortcut and the empty key included);
- PUBSUB CHANNELS pattern, over channels a second connection SUBSCRIBEd;
- COMMAND LIST FILTERBY PATTERN (Redis matches command names with nocase), against the glob
  applied with nocase to Redis's own command list.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from aspen.kv.generic import keys as keys_command
from aspen.kv.glob import MAX_NESTING, compile_glob, glob_match
from aspen.kv.keyspace import Keyspace
from aspen.kv.ops import WriteOp
from harness.bench.servers import redis_server
from harness.hypothesis_budget import scaled_examples
from harness.resp_wire import RespClient

pytestmark = pytest.mark.differential

NOW = 1_700_000_000_000

_PATTERN_BYTES = st.sampled_from([*b"aAbZz*?[]^-\\", 0x80, 0xFF, 0x00, 0x7F])
_STRING_BYTES = st.sampled_from([*b"aAbZz]^-\\*?[", 0x80, 0xFF, 0x7F, 0x00])
_adversarial = st.builds(
    lambda unit, n, tail: unit * n + tail,
    st.sampled_from([b"a*", b"*a", b"a*?", b"?*a", b"[a]*", b"a**", b"*[^b]"]),
    st.integers(1, 12),
    st.sampled_from([b"b", b"", b"a", b"*", b"[b", b"\\"]),
)
patterns = st.lists(
    st.lists(_PATTERN_BYTES, max_size=9).map(bytes) | _adversarial | st.binary(max_size=6),
    min_size=1, max_size=6, unique=True,
)
strings = st.lists(
    st.lists(_STRING_BYTES, max_size=8).map(bytes)
    | st.builds(lambda n, t: b"a" * n + t, st.integers(0, 40), st.sampled_from([b"", b"b", b"ab"])),
    min_size=1, max_size=8, unique=True,
)


@pytest.fixture(scope="module")
def redis() -> Iterator[tuple[RespClient, RespClient]]:
    with redis_server() as server:
        client = RespClient(server.port)
        subscriber = RespClient(server.port)
        yield client, subscriber
        client.close()
        subscriber.close()


def _aspen_keys(keys: list[bytes], pattern: bytes) -> set[bytes]:
    ks = Keyspace()
    for i, k in enumerate(keys):
        ks.execute(WriteOp((b"SET", k, b"v")), NOW, i)
    reply = keys_command(ks, [b"KEYS", pattern], NOW)
    assert isinstance(reply, list)
    return set(reply)


@settings(max_examples=scaled_examples(200), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(pats=patterns, keys=strings)
@example(pats=[b"*", b"", b"?", b"[", b"[^", b"[a"], keys=[b"", b"a", b"["])
@example(pats=[b"[a-\xff]", b"[\x80-b]", b"[b-a]", b"[a-]", b"[]-a]"], keys=[b"\x80", b"\xff",
                                                                          b"a", b"]", b"-"])
@example(pats=[b"a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b"], keys=[b"a" * 40, b"a" * 40 + b"b"])
@example(pats=[b"\\", b"a\\", b"\\*", b"[\\]]", b"[\\"], keys=[b"\\", b"a\\", b"*", b"]"])
def test_keys_and_pubsub_channels_agree_with_redis(
    redis: tuple[RespClient, RespClient], pats: list[bytes], keys: list[bytes]
) -> None:
    client, subscriber = redis
    client.call([b"FLUSHALL"])
    for k in keys:
        client.call([b"SET", k, b"v"])
    subscriber.call([b"SUBSCRIBE", *keys])  # one reply per channel; the first is enough to sync
    for _ in keys[1:]:
        subscriber.reader.read()
    try:
        for p in pats:
            want_keys = set(client.call([b"KEYS", p]))
            assert _aspen_keys(keys, p) == want_keys, f"KEYS {p!r}"
            want_channels = set(client.call([b"PUBSUB", b"CHANNELS", p]))
            ours = {k for k in keys if glob_match(p, k)}
            assert ours == want_channels, f"PUBSUB CHANNELS {p!r}"
    finally:
        subscriber.call([b"UNSUBSCRIBE"])
        for _ in keys[1:]:
            subscriber.reader.read()


@settings(max_examples=scaled_examples(150), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(pat=st.lists(st.sampled_from([*b"aAsSeEtTzZ*?[]^-\\", 0x80]), max_size=8).map(bytes))
@example(pat=b"S[A-e]T")
@example(pat=b"[^A-Z]et")
@example(pat=b"[\\S]et")
@example(pat=b"G[E-F]*")
def test_nocase_agrees_with_command_list_filterby(
    redis: tuple[RespClient, RespClient], pat: bytes
) -> None:
    client, _ = redis
    names = client.call([b"COMMAND", b"LIST"])
    want = set(client.call([b"COMMAND", b"LIST", b"FILTERBY", b"PATTERN", pat]))
    assert {n for n in names if glob_match(pat, n, nocase=True)} == want


def test_nesting_guard_agrees_with_redis(redis: tuple[RespClient, RespClient]) -> None:
    client, _ = redis
    client.call([b"FLUSHALL"])
    keys = [b"a" * (MAX_NESTING + 2) + b"b", b"a" * 2000]
    for k in keys:
        client.call([b"SET", k, b"v"])
    for pat in (b"a*" * (MAX_NESTING + 1) + b"b", b"a*" * MAX_NESTING + b"b",
                b"a*" * (MAX_NESTING - 1) + b"b", b"a*" * (MAX_NESTING + 5)):
        assert {k for k in keys if glob_match(pat, k)} == set(client.call([b"KEYS", pat]))


def test_cve_2022_36021_pattern_is_bounded() -> None:
    """A pattern that is exponential for a backtracking matcher: each call stays fast.

    Not a timing assertion on speed, a bound on blow-up: 200 such matches against a 1000-byte
    key took hours with the old regex; a polynomial matcher needs well under the limit.
    """
    pat = b"a*" * 30 + b"b"
    match = compile_glob(pat)
    key = b"a" * 1000
    start = time.monotonic()
    for _ in range(200):
        assert not match(key)
    assert time.monotonic() - start < 20
