"""Streams and consumer groups against a real redis-server 7.0, reply by reply.

A hypothesis state machine sends generated stream commands (XADD with every ID form and
trimming option, XRANGE/XREVRANGE, XDEL, XTRIM, XSETID, XGROUP, XREAD, XREADGROUP, XACK,
XPENDING, XCLAIM, XAUTOCLAIM, XINFO, plus TYPE/DEL/COPY/RENAME) to both, each command in RESP2
or RESP3 at random, and compares the replies type-exactly.

Time: Aspen runs each command at the wall clock's now (so idle times are close), except that
an XADD with a `*` ID goes to Redis first and Aspen then runs it at the ms Redis put in the ID:
Aspen must then produce the very same ID. Fields that hold a time (idle, seen-time, delivery
times) are compared by shape only; min-idle arguments are 0 or far larger than any real idle
time, so what gets claimed does not depend on timing. Bulk rules add hundreds of entries with
values of mixed sizes so that approximate trimming crosses node boundaries both by count and
by bytes, and XINFO's radix-tree-keys (the node count) is compared exactly.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule
from test_types_differential import REDIS_SERVER, redis_server

from aspen.kv.keyspace import Keyspace
from aspen.kv.ops import ReadOp, TxnOp, WriteOp
from aspen.kv.session import Session
from aspen.resp.protocol import encode
from harness.hypothesis_budget import scaled_examples
from harness.local_kv import LocalContext
from harness.resp_wire import RespClient, parse_reply

pytestmark = [
    pytest.mark.differential,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed"),
]

MAX = 2**64 - 1
KEYS = [b"s1", b"s2"]
some_key = st.sampled_from([*KEYS * 6, b"str", b"none"])
GROUPS = [b"g1", b"g2"]
CONSUMERS = [b"c1", b"c2", b"c3"]
HUGE_IDLE = b"10000000000"  # far above any idle time a test run sees


def _now() -> int:
    return int(time.time() * 1000)


class Aspen:
    def __init__(self) -> None:
        self.keyspace = Keyspace()
        self.now = _now()
        ctx = LocalContext(self.keyspace, clock=lambda: self.now)
        self.session = Session(1, ctx)
        self.seq = 0

    def call(self, argv: list[bytes], protocol: int, now: int) -> object:
        self.now = now
        out = self.session.handle(argv)
        if isinstance(out, (ReadOp, WriteOp, TxnOp)):
            self.seq += 1
            out = self.session.finish(out, self.keyspace.execute(out, now, self.seq))
        return parse_reply(encode(out, protocol))


# ------------------------------------------------------------------ generators

ms_part = st.one_of(
    st.sampled_from([b"0", b"1", b"2", b"3", b"5", b"7", b"10", b"100", b"%d" % MAX]),
    st.integers(1000, 1300).map(lambda n: b"%d" % n),
)
seq_part = st.sampled_from([b"0", b"1", b"2", b"3", b"%d" % MAX])


@st.composite
def stream_id(draw: st.DrawFn, specials: bool = True) -> bytes:
    kind = draw(st.integers(0, 9))
    if kind <= 5:
        return draw(ms_part) + b"-" + draw(seq_part)
    if kind == 6:
        return draw(ms_part)
    if kind == 7 and specials:
        return draw(st.one_of(st.sampled_from([b"-", b"+", b"$", b">", b"*"]),
                              ms_part.map(lambda ms: ms + b"-*")))
    if kind == 8 and specials:
        return b"(" + draw(ms_part) + draw(st.sampled_from([b"", b"-1", b"-0"]))
    return draw(st.sampled_from([b"bad", b"1-x", b"-1", b"1--1", b" 1", b"+1", b"01-1"]))


value = st.one_of(
    st.sampled_from([b"v", b"1", b"-5", b"12345678901", b"x" * 70, b""]),
    st.binary(max_size=6),
)
field = st.sampled_from([b"f1", b"f2", b"f3", b"7"])
count_arg = st.sampled_from([b"0", b"1", b"2", b"3", b"10", b"-1", b"x"])


@st.composite
def pairs(draw: st.DrawFn) -> list[bytes]:
    n = draw(st.integers(1, 3))
    out: list[bytes] = []
    for _ in range(n):
        out += [draw(field), draw(value)]
    if draw(st.integers(0, 20)) == 0:
        out = out[:-1]  # odd: an arity error
    return out


@st.composite
def trim_opts(draw: st.DrawFn, required: bool) -> list[bytes]:
    if not required and draw(st.booleans()):
        return []
    kind = draw(st.sampled_from([b"MAXLEN", b"MINID", b"maxlen"]))
    out = [kind]
    out += draw(st.sampled_from([[], [b"="], [b"~"]]))
    if kind.lower() == b"maxlen":
        out.append(draw(st.sampled_from([b"0", b"1", b"2", b"5", b"50", b"150", b"-1", b"x"])))
    else:
        out.append(draw(stream_id(specials=False)))
    if draw(st.integers(0, 4)) == 0:
        out += [b"LIMIT", draw(st.sampled_from([b"0", b"1", b"100", b"150", b"-1"]))]
    return out


@st.composite
def xadd(draw: st.DrawFn) -> list[bytes]:
    argv = [b"XADD", draw(st.sampled_from([*KEYS, b"str", b"new"]))]
    if draw(st.integers(0, 6)) == 0:
        argv.append(b"NOMKSTREAM")
    argv += draw(trim_opts(required=False))
    argv.append(draw(st.one_of(st.just(b"*"), stream_id())))
    return argv + draw(pairs())


@st.composite
def xrange(draw: st.DrawFn) -> list[bytes]:
    name = draw(st.sampled_from([b"XRANGE", b"XREVRANGE"]))
    argv = [name, draw(some_key)]
    argv += [draw(stream_id()), draw(stream_id())]
    if draw(st.booleans()):
        argv += [b"COUNT", draw(count_arg)]
    return argv


@st.composite
def xgroup(draw: st.DrawFn) -> list[bytes]:
    key = draw(some_key)
    g = draw(st.sampled_from(GROUPS))
    sub = draw(st.sampled_from([b"CREATE", b"SETID", b"DESTROY", b"CREATECONSUMER",
                                b"DELCONSUMER", b"create", b"HELP", b"NOPE"]))
    if sub == b"HELP":
        return [b"XGROUP", sub]
    if sub in (b"CREATE", b"create", b"SETID"):
        start = draw(st.sampled_from([b"$", b"0", b"1100"])) if draw(st.booleans()) else draw(
            stream_id())
        argv = [b"XGROUP", sub, key, g, start]
        if sub != b"SETID" and draw(st.booleans()):
            argv.append(b"MKSTREAM")
        if draw(st.integers(0, 3)) == 0:
            argv += [b"ENTRIESREAD", draw(st.sampled_from([b"0", b"1", b"5", b"-1", b"-2"]))]
        return argv
    if sub == b"DESTROY":
        return [b"XGROUP", sub, key, g]
    return [b"XGROUP", sub, key, g, draw(st.sampled_from(CONSUMERS))]


@st.composite
def xreadgroup(draw: st.DrawFn) -> list[bytes]:
    argv = [b"XREADGROUP", b"GROUP", draw(st.sampled_from(GROUPS)),
            draw(st.sampled_from(CONSUMERS))]
    if draw(st.booleans()):
        argv += [b"COUNT", draw(count_arg)]
    if draw(st.integers(0, 3)) == 0:
        argv.append(b"NOACK")
    if draw(st.integers(0, 8)) == 0:
        argv += [b"BLOCK", draw(st.sampled_from([b"1", b"-1", b"x"]))]
    keys = draw(st.lists(some_key, min_size=1, max_size=2))
    ids = [draw(st.sampled_from([b">", b">", b">", b"0", b"0", b"1200"]))
           if draw(st.integers(0, 8)) else draw(stream_id()) for _ in keys]
    return [*argv, b"STREAMS", *keys, *ids]


@st.composite
def xread(draw: st.DrawFn) -> list[bytes]:
    argv = [b"XREAD"]
    if draw(st.booleans()):
        argv += [b"COUNT", draw(count_arg)]
    if draw(st.integers(0, 8)) == 0:
        argv += [b"BLOCK", draw(st.sampled_from([b"1", b"-1", b"x"]))]
    keys = draw(st.lists(st.sampled_from([*KEYS, b"str", b"none"]), min_size=1, max_size=2))
    ids = [draw(st.one_of(st.just(b"$"), st.just(b"0"), stream_id())) for _ in keys]
    if draw(st.integers(0, 15)) == 0:
        ids = ids[:-1]
    return [*argv, b"STREAMS", *keys, *ids]


pending_id = st.integers(1001, 1300).map(lambda n: b"%d-0" % n)


@st.composite
def pel_command(draw: st.DrawFn) -> list[bytes]:
    key = draw(some_key)
    g = draw(st.sampled_from(GROUPS))
    c = draw(st.sampled_from(CONSUMERS))
    idle = draw(st.sampled_from([b"0", b"0", b"0", HUGE_IDLE, b"-5", b"x"]))
    kind = draw(st.integers(0, 4))
    ids = draw(st.lists(st.one_of(pending_id, pending_id, stream_id(specials=False)),
                        min_size=1, max_size=3))
    if kind == 0:
        return [b"XACK", key, g, *ids]
    if kind == 1:
        argv = [b"XPENDING", key, g]
        if draw(st.booleans()):
            if draw(st.booleans()):
                argv += [b"IDLE", idle]
            argv += [draw(stream_id()), draw(stream_id()), draw(count_arg)]
            if draw(st.booleans()):
                argv.append(c)
        return argv
    if kind == 2:
        argv = [b"XCLAIM", key, g, c, idle, *ids]
        for _ in range(draw(st.integers(0, 3))):
            argv += draw(st.sampled_from([
                [b"FORCE"], [b"JUSTID"], [b"IDLE", b"0"], [b"IDLE", b"100000000000"],
                [b"TIME", b"1"], [b"RETRYCOUNT", b"7"], [b"LASTID", b"5-0"], [b"BOGUS"],
                [b"RETRYCOUNT", b"x"],
            ]))
        return argv
    if kind == 3:
        argv = [b"XAUTOCLAIM", key, g, c, idle, draw(stream_id())]
        if draw(st.booleans()):
            argv += [b"COUNT", draw(st.sampled_from([b"1", b"2", b"0", b"x"]))]
        if draw(st.booleans()):
            argv.append(b"JUSTID")
        return argv
    sub = draw(st.sampled_from([[b"STREAM", key], [b"STREAM", key, b"FULL"],
                                [b"STREAM", key, b"FULL", b"COUNT", draw(count_arg)],
                                [b"GROUPS", key], [b"CONSUMERS", key, g], [b"HELP"]]))
    return [b"XINFO", *sub]


@st.composite
def other(draw: st.DrawFn) -> list[bytes]:
    key = draw(st.sampled_from(KEYS))
    return draw(st.sampled_from([
        [b"XLEN", key], [b"TYPE", key], [b"XDEL", key, b"1-0", b"2-0", b"bad"],
        [b"XDEL", key, b"3-0"], [b"COPY", key, b"copy"], [b"RENAME", key, b"s2"],
        [b"DEL", key], [b"XTRIM", key, *draw(trim_opts(required=True))],
        [b"XSETID", key, draw(stream_id()), *draw(st.sampled_from([
            [], [b"ENTRIESADDED", b"100"], [b"ENTRIESADDED", b"-1"],
            [b"MAXDELETEDID", b"1-0"], [b"MAXDELETEDID", b"%d-0" % MAX]]))],
        [b"XRANGE", b"copy", b"-", b"+"], [b"XINFO", b"STREAM", b"copy", b"FULL"],
        [b"SCAN", b"0", b"TYPE", b"stream"],
    ]))


# ------------------------------------------------------------------ masking time


_TIME_KEYS = {b"idle", b"seen-time"}


def mask(argv: list[bytes], reply: Any) -> Any:
    """Replace the time-dependent integers by "T" (and radix-tree-nodes, see the docs)."""
    name = argv[0].upper()
    if name == b"SCAN" and isinstance(reply, list):
        return [reply[0], sorted(reply[1])]  # hash order in Redis
    if name == b"XPENDING" and len(argv) > 3 and isinstance(reply, list):
        return [[e[0], e[1], "T", e[3]] if isinstance(e, list) and len(e) == 4 else e
                for e in reply]
    if name == b"XINFO":
        return _mask_info(reply, full=len(argv) > 3)
    return reply


def _mask_info(reply: Any, full: bool, under: bytes = b"") -> Any:
    if isinstance(reply, tuple):  # a RESP3 map item
        k, v = reply
        if k in _TIME_KEYS or k == b"radix-tree-nodes":
            return (k, "T")
        return (k, _mask_info(v, full, k))
    if not isinstance(reply, list):
        return reply
    out = list(reply)
    for i, x in enumerate(out):
        if isinstance(x, bytes) and i + 1 < len(out) and i % 2 == 0 and (
            x in _TIME_KEYS or x == b"radix-tree-nodes"
        ):
            out[i + 1] = "T"
        elif isinstance(x, bytes) and i % 2 == 0 and i + 1 < len(out) and x == b"pending" \
                and full and isinstance(out[i + 1], list):
            out[i + 1] = [_mask_pending(e) for e in out[i + 1]]
        elif isinstance(x, (list, tuple)):
            out[i] = _mask_info(x, full, under)
    if full and under == b"pending":
        return [_mask_pending(e) for e in out]
    return type(reply)(out) if type(reply) is not list else out


def _mask_pending(e: Any) -> Any:
    if isinstance(e, list) and len(e) == 4:
        return [e[0], e[1], "T", e[3]]
    if isinstance(e, list) and len(e) == 3:
        return [e[0], "T", e[2]]
    return e


# ------------------------------------------------------------------ the machine


class StreamsMachine(RuleBasedStateMachine):
    port = 0

    def __init__(self) -> None:
        super().__init__()
        self.aspen = Aspen()
        self.clients = {2: RespClient(self.port), 3: RespClient(self.port, protocol=3)}
        self.clients[2].call([b"FLUSHALL"])
        self.clients[2].call([b"SET", b"str", b"x"])
        self.aspen.call([b"SET", b"str", b"x"], 2, _now())
        self.history: list[object] = []
        self.base = 1000

    def teardown(self) -> None:
        for c in self.clients.values():
            c.close()

    def send(self, argv: list[bytes], protocol: int) -> None:
        theirs = self.clients[protocol].call(argv)
        now = _now()
        if argv[0].upper() == b"XADD" and b"*" in argv and isinstance(theirs, bytes):
            now = int(theirs.split(b"-")[0])  # Aspen must pick the same ID at Redis's ms
        ours = self.aspen.call(argv, protocol, now)
        self.history.append((argv, ours))
        m_ours, m_theirs = mask(argv, ours), mask(argv, theirs)
        assert m_ours == m_theirs, (argv, protocol, ours, theirs, self.history[-8:])
        assert type(ours) is type(theirs), (argv, ours, theirs)

    @initialize()
    def groups(self) -> None:
        for key in KEYS:
            for g in GROUPS:
                self.send([b"XGROUP", b"CREATE", key, g, b"0", b"MKSTREAM"], 2)

    @rule(argv=st.one_of(xadd(), xrange(), other()), protocol=st.sampled_from([2, 3]))
    def command(self, argv: list[bytes], protocol: int) -> None:
        self.send(argv, protocol)

    @rule(argv=st.one_of(xgroup(), xread()), protocol=st.sampled_from([2, 3]))
    def group_command(self, argv: list[bytes], protocol: int) -> None:
        self.send(argv, protocol)

    @rule(argv=xreadgroup(), protocol=st.sampled_from([2, 3]))
    def read_group(self, argv: list[bytes], protocol: int) -> None:
        self.send(argv, protocol)

    @rule(argv=pel_command(), protocol=st.sampled_from([2, 3]))
    def pel(self, argv: list[bytes], protocol: int) -> None:
        self.send(argv, protocol)

    @rule(key=st.sampled_from(KEYS), n=st.one_of(st.integers(1, 20), st.integers(90, 260)),
          size=st.sampled_from([1, 20, 300, 700]),
          auto=st.integers(0, 5).map(lambda x: x == 0),
          trim=st.sampled_from([[], [b"MAXLEN", b"~", b"120"], [b"MINID", b"~", b"1100"],
                                [b"MAXLEN", b"~", b"10", b"LIMIT", b"150"]]))
    def bulk(self, key: bytes, n: int, size: int, auto: bool, trim: list[bytes]) -> None:
        """Many entries: node boundaries by count (100) and by bytes (4096)."""
        for i in range(n):
            self.base += 1
            sid = b"*" if auto and i == n - 1 else b"%d-*" % self.base
            fields = [b"f1", b"%d" % i] if i % 5 else [b"other", b"x" * (size + i % 3)]
            self.send([b"XADD", key, *(trim if i == n - 1 else []), sid, *fields], 2)
        if auto:
            self.base = max(self.base, _now())

    def _pending(self, key: bytes, group: bytes) -> list[bytes]:
        reply = self.aspen.call([b"XPENDING", key, group, b"-", b"+", b"50"], 2, _now())
        return [e[0] for e in reply] if isinstance(reply, list) else []

    def _ids(self, key: bytes) -> list[bytes]:
        reply = self.aspen.call([b"XRANGE", key, b"-", b"+"], 2, _now())
        return [e[0] for e in reply] if isinstance(reply, list) else []

    @rule(key=st.sampled_from(KEYS), group=st.sampled_from(GROUPS),
          consumer=st.sampled_from(CONSUMERS), data=st.data(),
          kind=st.sampled_from([b"XCLAIM", b"XACK", b"XAUTOCLAIM", b"XPENDING", b"XRANGE",
                                b"XREVRANGE", b"XREADGROUP"]),
          protocol=st.sampled_from([2, 3]))
    def targeted(self, key: bytes, group: bytes, consumer: bytes, data: st.DataObject,
                 kind: bytes, protocol: int) -> None:
        """Commands aimed at IDs that exist (entries, pending entries)."""
        pending, ids = self._pending(key, group), self._ids(key)
        known = pending + ids or [b"1-0"]
        # indexes, not sampled_from(known): the draws must not depend on state (wall-clock IDs)
        picks = data.draw(st.lists(st.integers(0, 10_000), min_size=1, max_size=4))
        pick = [known[i % len(known)] for i in picks]
        if kind == b"XCLAIM":
            opts = data.draw(st.lists(st.sampled_from([
                [b"FORCE"], [b"JUSTID"], [b"IDLE", b"0"], [b"IDLE", b"100000000000"],
                [b"TIME", b"1"], [b"RETRYCOUNT", b"7"], [b"LASTID", pick[0]]]), max_size=3))
            idle = data.draw(st.sampled_from([b"0", HUGE_IDLE]))
            argv = [b"XCLAIM", key, group, consumer, idle, *pick, *[a for o in opts for a in o]]
        elif kind == b"XACK":
            argv = [b"XACK", key, group, *pick]
        elif kind == b"XAUTOCLAIM":
            argv = [b"XAUTOCLAIM", key, group, consumer,
                    data.draw(st.sampled_from([b"0", HUGE_IDLE])), pick[0],
                    b"COUNT", data.draw(st.sampled_from([b"1", b"2", b"5", b"100"]))]
            if data.draw(st.booleans()):
                argv.append(b"JUSTID")
        elif kind == b"XPENDING":
            lo, hi = sorted(pick[:2], key=lambda x: [int(p) for p in x.split(b"-")])[0], pick[-1]
            argv = [b"XPENDING", key, group, lo, hi, b"5"]
            if data.draw(st.booleans()):
                argv.append(consumer)
        elif kind == b"XREADGROUP":
            argv = [b"XREADGROUP", b"GROUP", group, consumer, b"COUNT", b"3", b"STREAMS", key,
                    data.draw(st.sampled_from([b">", pick[0], b"0"]))]
        else:
            argv = [kind, key, pick[0], pick[-1], b"COUNT", b"4"]
        self.send(argv, protocol)

    @rule(key=st.sampled_from(KEYS), n=st.integers(1, 40))
    def delete_some(self, key: bytes, n: int) -> None:
        reply = self.aspen.call([b"XRANGE", key, b"-", b"+", b"COUNT", b"%d" % (3 * n)], 2,
                                _now())
        if isinstance(reply, list):
            ids = [e[0] for e in reply[::3]]
            if ids:
                self.send([b"XDEL", key, *ids], 2)


@pytest.fixture(scope="module")
def redis_port() -> Iterator[int]:
    with redis_server() as port:
        yield port


@pytest.mark.slow
def test_streams_vs_redis(redis_port: int) -> None:
    StreamsMachine.port = redis_port
    run = StreamsMachine.TestCase()
    run.settings = settings(
        max_examples=scaled_examples(60),
        stateful_step_count=40,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    run.runTest()
