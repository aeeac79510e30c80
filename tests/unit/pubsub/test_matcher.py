"""The PSUBSCRIBE matcher, differentially against redis-server 7.0.15.

For generated patterns and channels, a RESP3 connection PSUBSCRIBEs the patterns and
PUBLISHes each channel: the pmessage pushes that precede PUBLISH's count say exactly which
patterns Redis matched. `aspen.pubsub.match` must agree on every pair.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from aspen.kv.glob import MAX_NESTING, match
from harness.bench.servers import redis_server
from harness.resp_wire import Push, RespClient, encode_command

# The bytes that mean something to the matcher, plus ordinary and high (signed-char) bytes.
_PATTERN_BYTES = st.sampled_from([*b"ab*?[]^-\\", 0x80, 0xFF, 0x00])
_CHANNEL_BYTES = st.sampled_from([*b"ab]^-\\*?[", 0x80, 0xFF, 0x7F])
patterns = st.lists(st.binary(min_size=1, max_size=8).map(bytes) | st.lists(
    _PATTERN_BYTES, min_size=1, max_size=8).map(bytes), min_size=1, max_size=6, unique=True)
channels = st.lists(st.lists(_CHANNEL_BYTES, max_size=6).map(bytes), min_size=1, max_size=6)


@pytest.fixture(scope="module")
def redis3() -> Iterator[RespClient]:
    with redis_server() as server:
        client = RespClient(server.port)
        assert isinstance(client.call([b"HELLO", b"3"]), list)
        yield client
        client.close()


def redis_matches(client: RespClient, pats: list[bytes], chans: list[bytes]) -> list[set[bytes]]:
    """For each channel, the patterns Redis delivered it through."""
    client.send([b"PSUBSCRIBE", *pats])
    for _ in pats:
        reply = client.read()
        assert isinstance(reply, Push) and reply[0] == b"psubscribe"
    client.sock.sendall(b"".join(encode_command([b"PUBLISH", ch, b"m"]) for ch in chans))
    out = []
    for _ in chans:
        got: set[bytes] = set()
        while isinstance(reply := client.read(), Push):
            assert reply[0] == b"pmessage"
            got.add(reply[1])
        assert reply == len(got)
        out.append(got)
    client.send([b"PUNSUBSCRIBE"])
    for _ in pats:
        client.read()
    return out


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(pats=patterns, chans=channels)
@example(pats=[b"*", b"**", b"a*"], chans=[b"", b"a"])  # a star never matches ""
@example(pats=[b"[a", b"[^", b"[", b"[a-", b"a[b-]"], chans=[b"a", b"b", b"a]", b"[", b"^"])
@example(pats=[b"\\", b"a\\", b"\\*", b"[\\]]"], chans=[b"\\", b"a\\", b"*", b"]"])
@example(pats=[b"[a-\xff]", b"[\x80-b]", b"[b-a]"], chans=[b"\x80", b"\xff", b"a", b"c"])
@example(pats=[b"*a*b", b"a*?b", b"?*", b"*?"], chans=[b"ab", b"aab", b"a", b"xaxb"])
def test_matcher_agrees_with_redis(redis3: RespClient, pats: list[bytes],
                                   chans: list[bytes]) -> None:
    expected = redis_matches(redis3, pats, chans)
    for ch, want in zip(chans, expected, strict=True):
        ours = {p for p in pats if match(p, ch)}
        assert ours == want, f"channel {ch!r}"


def test_nesting_guard_and_long_inputs_agree_with_redis(redis3: RespClient) -> None:
    deep = b"a*" * (MAX_NESTING + 1) + b"b"
    shallow = b"a*" * (MAX_NESTING - 1) + b"b"
    final_star = b"a*" * (MAX_NESTING + 5)
    chans = [b"a" * (MAX_NESTING + 2) + b"b", b"a" * 2000]
    pats = [deep, shallow, final_star]
    expected = redis_matches(redis3, pats, chans)
    for ch, want in zip(chans, expected, strict=True):
        assert {p for p in pats if match(p, ch)} == want
    # the loop is linear-ish where a naive backtracker is exponential
    assert not match(b"*a" * 30 + b"b", b"a" * 200)
