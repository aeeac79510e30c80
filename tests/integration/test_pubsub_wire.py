"""Pub/sub over the wire, redis-server 7.0.15 vs `aspen node`, in RESP2 and RESP3.

Generated sessions of two connections run the same commands on both servers; after each step
both connections are drained up to a barrier (`PING <token>`, answered in every mode), so a
step's result is every reply and push each connection received: exact RESP types (a `>`
push is not an array), texts and counts. The only normalisation is where Redis's order is a
hash-table order: the channels of an UNSUBSCRIBE without arguments, PUBSUB CHANNELS, and the
pmessages of one PUBLISH across several patterns (sorted on both sides); HELLO is reduced
to its protocol and CLIENT ID's number is dropped (server names and client ids differ).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.bench.servers import aspen_node, redis_server
from harness.resp_wire import Map, Push, RespClient

pytestmark = pytest.mark.slow

BARRIER = b"__barrier__"
CHANNELS = [b"a", b"b", b"ab", b"", b"news.x"]
PATTERNS = [b"a*", b"*", b"?", b"[ab]", b"*b", b"news.*", b"[^a]*"]

channel = st.sampled_from(CHANNELS)
pattern = st.sampled_from(PATTERNS)
command = st.one_of(
    st.lists(channel, min_size=1, max_size=3).map(lambda a: [b"SUBSCRIBE", *a]),
    st.lists(channel, max_size=2).map(lambda a: [b"UNSUBSCRIBE", *a]),
    st.lists(pattern, min_size=1, max_size=3).map(lambda a: [b"PSUBSCRIBE", *a]),
    st.lists(pattern, max_size=2).map(lambda a: [b"PUNSUBSCRIBE", *a]),
    st.tuples(channel, st.sampled_from([b"m1", b"m2", b""])).map(lambda a: [b"PUBLISH", *a]),
    st.lists(pattern, max_size=1).map(lambda a: [b"PUBSUB", b"CHANNELS", *a]),
    st.lists(channel, max_size=3).map(lambda a: [b"PUBSUB", b"NUMSUB", *a]),
    st.just([b"PUBSUB", b"NUMPAT"]),
    st.sampled_from([[b"PING"], [b"PING", b"x"], [b"GET", b"k"], [b"ECHO", b"e"],
                     [b"HELLO", b"2"], [b"HELLO", b"3"], [b"RESET"], [b"CLIENT", b"ID"],
                     [b"PUBSUB", b"CHANNELS", b"a", b"b"], [b"SUBSCRIBE"], [b"PUBLISH", b"a"]]),
)
steps = st.lists(st.tuples(st.integers(0, 1), command), min_size=1, max_size=14)


@pytest.fixture(scope="module")
def ports() -> Iterator[tuple[int, int]]:
    with redis_server() as redis, aspen_node() as aspen:
        yield redis.port, aspen.port


def _is_barrier(reply: object) -> bool:
    return reply == BARRIER or (type(reply) is list and reply == [b"pong", BARRIER])


def drain(client: RespClient) -> list[object]:
    client.send([b"PING", BARRIER])
    out = []
    while not _is_barrier(reply := client.read()):
        out.append(reply)
    return out


def _sorted_runs(replies: list[object], kinds: set[bytes], key: int) -> list[object]:
    """Sort each run of consecutive pushes/arrays of these kinds by element `key`."""
    out: list[object] = []
    run: list[list[object]] = []

    def flush() -> None:
        if kinds == {b"unsubscribe"}:  # names in any order, the counts as sent
            names = sorted(r[1] for r in run)  # type: ignore[type-var]
            out.extend(type(r)([r[0], n, r[2]]) for r, n in zip(run, names, strict=True))
        else:
            out.extend(sorted(run, key=repr))
        run.clear()

    for r in replies:
        if isinstance(r, list) and len(r) > key and r[0] in kinds:
            run.append(r)
        else:
            flush()
            out.append(r)
    flush()
    return out


def normalise(argv: list[bytes], replies: list[object]) -> list[object]:
    replies = [("HELLO", dict(r).get(b"proto")) if isinstance(r, Map) else r for r in replies]
    replies = [
        ("HELLO", r[5]) if type(r) is list and r[:1] == [b"server"] else r for r in replies
    ]
    if argv == [b"CLIENT", b"ID"]:  # each server numbers its clients its own way
        replies = ["<id>" if type(r) is int else r for r in replies]
    if argv == [b"UNSUBSCRIBE"]:
        replies = _sorted_runs(replies, {b"unsubscribe"}, 1)
    if argv[:2] == [b"PUBSUB", b"CHANNELS"]:
        replies = [sorted(r) if type(r) is list else r for r in replies]  # type: ignore[type-var]
    return _sorted_runs(replies, {b"pmessage"}, 1)


def run_session(port: int, script: list[tuple[int, list[bytes]]]) -> list[object]:
    conns = [RespClient(port), RespClient(port)]
    try:
        results: list[object] = []
        for who, argv in script:
            conns[who].send(argv)
            mine = normalise(argv, drain(conns[who]))
            other = normalise([b"PUBLISH"], drain(conns[1 - who]))
            results.append((argv, mine, other))
        for c in conns:  # leave nothing subscribed for the next example
            c.send([b"RESET"])
            assert drain(c) == ["RESET"]
        return results
    finally:
        for c in conns:
            c.close()


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(script=steps)
def test_pubsub_sessions_match_redis(ports: tuple[int, int],
                                     script: list[tuple[int, list[bytes]]]) -> None:
    redis_port, aspen_port = ports
    want = run_session(redis_port, script)
    got = run_session(aspen_port, script)
    for i, (w, g) in enumerate(zip(want, got, strict=True)):
        assert g == w, f"step {i}: {script[i]}"


def test_messages_and_confirmations_are_pushes_in_resp3_arrays_in_resp2(
    ports: tuple[int, int],
) -> None:
    """The type distinction itself (the generated test compares it; this pins it down)."""
    for port in ports:
        sub2, sub3, pub = RespClient(port), RespClient(port), RespClient(port)
        try:
            sub3.call([b"HELLO", b"3"])
            first2 = sub2.call([b"SUBSCRIBE", b"t"])
            first3 = sub3.call([b"SUBSCRIBE", b"t"])
            assert type(first2) is list and type(first3) is Push
            assert pub.call([b"PUBLISH", b"t", b"hi"]) == 2
            assert type(sub2.read()) is list and type(sub3.read()) is Push
        finally:
            for c in (sub2, sub3, pub):
                c.close()
