"""Differential tests for hashes, lists, sets and sorted sets, reply by reply.

One hypothesis state machine, two oracles:
- real redis-server 7.0 over a socket (started by the test on a free loopback port), compared
  at the RESP2 level: Aspen's reply is encoded by Aspen's codec and both byte streams are
  parsed by the same minimal parser, so status vs bulk vs nil vs null-array all count;
- fakeredis, compared on redis-py's parsed values, with its known deviations from Redis 7.0
  corrected in `fakeredis_fix` (each listed in docs/compatibility.md).

Order-free replies (SMEMBERS and the set algebra) are sorted; random ones (SPOP,
SRANDMEMBER, HRANDFIELD) are checked by shape and membership, and after an SPOP the oracle
removes exactly the members Aspen popped, so both sides stay equal.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
import redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from types_commandgen import ALL_KEYS, PATTERNS, random_command, type_command

from aspen.kv.keyspace import Keyspace
from aspen.kv.ops import ReadOp, TxnOp, WriteOp
from aspen.kv.session import Session
from aspen.resp.protocol import encode, format_double
from harness.bench.servers import redis_server as reference_server
from harness.hypothesis_budget import scaled_examples
from harness.local_kv import LocalContext, LocalExecutor
from harness.resp_wire import Err, NullArray, RespClient, Status, error_line, parse_reply

pytestmark = pytest.mark.differential

REDIS_SERVER = shutil.which("redis-server")
NOW = 1_700_000_000_000


@contextlib.contextmanager
def redis_server() -> Iterator[int]:
    """The reference redis-server on a free port (harness.bench.servers); its port."""
    with reference_server() as server:
        yield server.port


# ------------------------------------------------------------------ canonical forms

_SORTED = {b"smembers", b"sinter", b"sunion", b"sdiff"}


def canonical(argv: list[bytes], reply: object) -> object:
    if argv[0].lower() in _SORTED and isinstance(reply, list):
        return sorted(reply)  # type: ignore[type-var]
    return reply


def to_redis_py(reply: object) -> object:
    """A wire-level reply as redis-py hands it over (what fakeredis gives us)."""
    if isinstance(reply, Err):
        return Err(str(reply))
    if isinstance(reply, Status):
        return str(reply).encode()
    if isinstance(reply, NullArray):
        return None
    if isinstance(reply, list):
        return [to_redis_py(x) for x in reply]
    return reply


# ------------------------------------------------------------------ the two sides


class Aspen:
    def __init__(self) -> None:
        self.keyspace = Keyspace()
        self.executor = LocalExecutor(self.keyspace, lambda: NOW)
        ctx = LocalContext(self.keyspace, clock=lambda: NOW)
        self.sessions = [Session(1, ctx), Session(2, ctx)]

    def call(self, argv: list[bytes], client: int = 0) -> object:
        session = self.sessions[client]
        out = session.handle(argv)
        if isinstance(out, (ReadOp, WriteOp, TxnOp)):
            out = session.finish(out, self.executor.execute(out))
        return parse_reply(encode(out, 2))


class Fake:
    def __init__(self) -> None:
        server = fakeredis.FakeServer(version=(7,))
        self.conn = fakeredis.FakeRedis(
            server=server, version=(7,)
        ).connection_pool.get_connection()

    def call(self, argv: list[bytes]) -> object:
        self.conn.send_command(*argv)
        try:
            reply = self.conn.read_response(disable_decoding=True)
        except redis.ResponseError as exc:
            return error_line(exc)
        return reply


def fakeredis_fix(argv: list[bytes], ours: object, theirs: object) -> object:
    """fakeredis's reply where it is known to differ from Redis 7.0 (checked on the wire).

    Each case is listed in docs/compatibility.md; the redis-server machine checks ours.
    """
    name = argv[0].lower()
    if isinstance(ours, Err) and isinstance(theirs, Err):
        # fakeredis validates arguments in another order and words some errors differently
        # (e.g. COUNT texts, arity vs syntax); the redis-server machine compares error texts
        # exactly, so here an error only has to meet an error.
        return ours
    if name == b"zmpop" and isinstance(theirs, list) and len(theirs) == 2:
        key, popped = theirs  # fakeredis hands the scores over as floats
        return [key, [[m, format_double(x) if isinstance(x, float) else x] for m, x in popped]]
    if isinstance(theirs, float):
        theirs = format_double(theirs)  # fakeredis hands ZINCRBY/ZADD INCR over as a float
        if ours == b"-0" and theirs == b"0":
            return ours  # Redis replies with the new score before storing it (as 0)
        return theirs
    if isinstance(theirs, list) and any(isinstance(x, float) for x in theirs):
        return [format_double(x) if isinstance(x, float) else x for x in theirs]  # ZMSCORE
    if (
        name == b"zdiff"
        and ours == Err("ERR syntax error")
        and any(a.lower() in (b"weights", b"aggregate") for a in argv)
    ):
        return ours  # Redis refuses WEIGHTS/AGGREGATE on ZDIFF; fakeredis accepts them
    if name == b"lmove" and isinstance(ours, Err) and theirs is None:
        return ours  # Redis parses LEFT/RIGHT before it looks the source up
    if name == b"sintercard" and not isinstance(ours, Err) and isinstance(theirs, Err):
        return ours  # fakeredis miscounts keys vs args when LIMIT's words are taken as keys
    if (
        name == b"hincrbyfloat"
        and isinstance(ours, bytes)
        and isinstance(theirs, bytes)
        and float(ours) == float(theirs)
    ):
        return ours  # fakeredis adds in doubles; Redis in long doubles (see sync)
    if isinstance(theirs, dict):
        return [x for pair in theirs.items() for x in pair]  # HGETALL as a dict
    if name == b"hrandfield" and len(argv) > 3 and argv[3].lower() != b"withvalues":
        return Err("ERR syntax error")  # fakeredis ignores an unknown 4th argument
    opts = [a.lower() for a in argv[4:]]
    if name == b"zrange" and any(opts.count(o) > 1 for o in (b"rev", b"byscore", b"bylex")):
        return Err("ERR syntax error")  # Redis accepts REV/BYSCORE/BYLEX once each
    if name == b"lpos" and isinstance(ours, Err) and "can't be" in ours:
        return ours  # fakeredis lets a later valid RANK/COUNT/MAXLEN override a bad one
    if isinstance(theirs, list) and theirs and all(isinstance(x, list) for x in theirs):
        flat = [x for pair in theirs for x in pair]  # ZPOPMIN/ZPOPMAX in RESP3 shape
        return [format_double(x) if isinstance(x, float) else x for x in flat]
    if name == b"zrange" and b"bylex" in opts and b"withscores" in opts:
        return Err("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
    if name == b"hrandfield" and isinstance(ours, Err) and theirs is None:
        return ours  # Redis parses the count before it looks the key up
    if theirs == Err("ERR increment would produce NaN or Infinity") and ours == Err(
        "ERR value is NaN or Infinity"
    ):
        return ours  # HINCRBYFLOAT with an infinite increment: Redis refuses it up front
    if name == b"hrandfield" and theirs is None and ours == []:
        return ours  # a count on a missing key: Redis answers an empty array
    if theirs == Err("ERR min or max not a valid string range item"):
        return Err("ERR min or max not valid string range item")  # Redis's wording
    positive = Err("ERR value is out of range, must be positive")
    if ours == positive and theirs == Err("ERR value is not an integer or out of range"):
        return ours  # SPOP/LPOP/... COUNT: Redis uses one text for "not a number" and "< 0"
    if name in (b"lpop", b"rpop") and len(argv) > 3 and theirs == Err("ERR syntax error"):
        return Err(f"ERR wrong number of arguments for '{name.decode()}' command")
    return theirs


class Machine(RuleBasedStateMachine):
    """Aspen vs an oracle; subclasses pick the oracle."""

    exact_types = True

    def __init__(self) -> None:
        super().__init__()
        self.aspen = Aspen()
        self.history: list[tuple[list[bytes], object, object]] = []
        self.current: object = None

    def oracle(self, argv: list[bytes]) -> object:
        raise NotImplementedError

    def ours(self, argv: list[bytes]) -> object:
        reply = self.aspen.call(argv)
        return reply if self.exact_types else to_redis_py(reply)

    def compare(self, argv: list[bytes], ours: object, theirs: object) -> None:
        self.history.append((argv, ours, theirs))
        ours, theirs = canonical(argv, ours), canonical(argv, theirs)
        if not self.exact_types:
            theirs = fakeredis_fix(argv, ours, theirs)
        recent = [h for h in self.history[:-1] if set(argv[1:2]) & set(h[0][1:])][-6:]
        assert ours == theirs, repr((argv, ours, theirs, recent))
        if self.exact_types:
            assert type(ours) is type(theirs), (argv, ours, theirs)

    @rule(argv=type_command())
    def run(self, argv: list[bytes]) -> None:
        ours = self.current = self.ours(argv)
        theirs = self.oracle(argv)
        self.compare(argv, ours, theirs)
        self.sync(argv, ours, theirs)

    def sync(self, argv: list[bytes], ours: object, theirs: object) -> None:
        """Bring the oracle back in line after a known, accepted deviation."""

    @rule(argv=random_command())
    def random(self, argv: list[bytes]) -> None:
        ours = self.current = self.ours(argv)
        if isinstance(ours, (Err, NullArray)) or ours is None or ours == []:
            self.compare(argv, ours, self.oracle(argv))
            return
        name, key = argv[0].lower(), argv[1]
        picked = ours if isinstance(ours, list) else [ours]
        count = int(argv[2]) if len(argv) > 2 else None
        if name == b"spop":
            size = self.oracle([b"scard", key])
            assert isinstance(size, int)
            assert len(picked) == (1 if count is None else min(count, size)), (argv, ours)
            assert self.oracle([b"srem", key, *picked]) == len(picked), (argv, ours)
            return
        if name == b"srandmember":
            universe = self.oracle([b"smembers", key])
            fields = picked
        elif name == b"zrandmember":
            universe = self.oracle([b"zrange", key, b"0", b"-1"])
            fields = picked[::2] if len(argv) == 4 else picked
            if len(argv) == 4:
                for m, score in zip(picked[::2], picked[1::2], strict=True):
                    theirs = self.oracle([b"zscore", key, m])
                    assert float(score) == float(theirs), (argv, m, score, theirs)  # type: ignore[arg-type]
        else:
            universe = self.oracle([b"hkeys", key])
            fields = picked[::2] if len(argv) == 4 else picked
            if len(argv) == 4:
                for f, v in zip(picked[::2], picked[1::2], strict=True):
                    assert self.oracle([b"hget", key, f]) == v
        assert isinstance(universe, list)
        assert set(fields) <= set(universe), (argv, ours, universe)
        if count is None:
            assert len(fields) == 1
        elif count > 0:
            assert len(fields) == min(count, len(universe))
            assert len(set(fields)) == len(fields)
        else:
            assert len(fields) == -count

    @rule(
        name=st.sampled_from([b"hscan", b"sscan", b"zscan"]),
        key=st.sampled_from(ALL_KEYS),
        pattern=st.none() | st.sampled_from(PATTERNS),
        count=st.integers(1, 4),
    )
    def full_scan(self, name: bytes, key: bytes, pattern: bytes | None, count: int) -> None:
        args = [b"count", str(count).encode()] + ([b"match", pattern] if pattern else [])
        seen: list[object] = []
        for side in (self.ours, self.oracle):
            cursor: object = b"0"
            found: set[bytes] = set()
            for _ in range(100):
                reply = side([name, key, cursor, *args])  # type: ignore[list-item]
                if not isinstance(reply, list):
                    found = {reply}  # type: ignore[arg-type]
                    break
                cursor, page = reply
                step = 2 if name != b"sscan" else 1
                found.update(page[::step])
                if cursor == b"0":
                    break
            else:
                pytest.fail("scan did not finish")
            seen.append(found)
        assert seen[0] == seen[1], (name, key, seen)

    @invariant()
    def same_types(self) -> None:
        for key in ALL_KEYS:
            ours, theirs = self.ours([b"type", key]), self.oracle([b"type", key])
            recent = [h for h in self.history if key in h[0][1:]][-6:]
            assert ours == theirs, (key, ours, theirs, recent)


class WireMachine(Machine):
    port = 0

    def __init__(self) -> None:
        super().__init__()
        self.client = RespClient(self.port)
        self.watcher = RespClient(self.port)
        assert self.client.call([b"FLUSHALL"]) == "OK"

    def oracle(self, argv: list[bytes]) -> object:
        return self.client.call(argv)

    def teardown(self) -> None:
        self.client.close()
        self.watcher.close()

    @rule(argv=type_command(), extra=st.sampled_from(ALL_KEYS))
    def watched(self, argv: list[bytes], extra: bytes) -> None:
        """WATCH the command's keys from a second client: does EXEC abort on both sides?"""
        keys = [a for a in argv[1:] if a in ALL_KEYS] or [extra]
        outcomes = []
        for call in (
            lambda a, c: self.aspen.call(a, c),
            lambda a, c: (self.client if c == 0 else self.watcher).call(a),
        ):
            assert call([b"watch", *keys], 1) == "OK"
            ours = call(argv, 0)
            assert call([b"multi"], 1) == "OK"
            call([b"ping"], 1)
            outcomes.append((ours, call([b"exec"], 1)))
        self.history.append((argv, outcomes[0], outcomes[1]))
        (ours, our_exec), (theirs, their_exec) = outcomes
        assert canonical(argv, ours) == canonical(argv, theirs), (argv, ours, theirs)
        assert our_exec == their_exec, (argv, keys, our_exec, their_exec)


def _without_rank_limit(argv: list[bytes]) -> list[bytes]:
    """ZRANGE/ZRANGESTORE options as fakeredis needs them to mean what they mean to Redis.

    By rank, `LIMIT n -1` is ignored by Redis and refused by fakeredis: drop it.
    """
    name = argv[0].lower()
    if name not in (b"zrange", b"zrangestore"):
        return argv
    first = 4 if name == b"zrange" else 5
    opts = [a.lower() for a in argv[first:]]
    if b"byscore" in opts or b"bylex" in opts:
        # fakeredis only honours LIMIT when BYSCORE/BYLEX comes first; Redis takes any order.
        by = [a for a in argv[first:] if a.lower() in (b"byscore", b"bylex")][:1]
        rest = list(argv[first:])
        rest.remove(by[0])
        return argv[:first] + by + rest
    out, limits, i = argv[:first], [], first
    while i < len(argv):
        if argv[i].lower() == b"limit" and i + 2 < len(argv):
            if not all(_is_int(a) for a in argv[i + 1:i + 3]):
                return argv  # Redis parses LIMIT's numbers first: both say "not an integer"
            limits.append(argv[i + 2])
            i += 3
            continue
        out.append(argv[i])
        i += 1
    if limits and limits[-1] == b"-1":
        return out  # the last LIMIT wins; with count -1 Redis lets a rank range pass
    return argv


def _is_int(arg: bytes) -> bool:
    try:
        int(arg)
    except ValueError:
        return False
    return True


class FakeMachine(Machine):
    exact_types = False

    def __init__(self) -> None:
        super().__init__()
        self.fake = Fake()

    def sync(self, argv: list[bytes], ours: object, theirs: object) -> None:
        if argv[0].lower() == b"hincrbyfloat" and isinstance(ours, bytes) and ours != theirs:
            self.fake.call([b"hset", argv[1], argv[2], ours])

    def _zmpop_wrongtype(self, argv: list[bytes]) -> Err | None:
        """Redis's ZMPOP walks its keys in order: a missing key is skipped, a key of another
        type is WRONGTYPE, a sorted set ends the walk. fakeredis answers nil for a string key
        (and crashes on a set), so the oracle's reply is Redis's where it applies."""
        if argv[0].lower() != b"zmpop" or len(argv) < 4 or not argv[1].isdigit():
            return None
        numkeys = int(argv[1])
        if not 0 < numkeys <= len(argv) - 3:
            return None
        rest = [a.lower() for a in argv[2 + numkeys :]]
        count_ok = len(rest) == 1 or (
            len(rest) == 3 and rest[1] == b"count" and rest[2].isdigit() and int(rest[2]) > 0
        )
        if rest[0] not in (b"min", b"max") or not count_ok:
            return None  # a syntax error comes first; fakeredis words those its own way
        for key in argv[2 : 2 + numkeys]:
            kind = self.fake.call([b"type", key])
            if kind == b"none":
                continue
            if kind != b"zset":
                return Err("WRONGTYPE Operation against a key holding the wrong kind of value")
            return None
        return None

    def oracle(self, argv: list[bytes]) -> object:
        argv = _without_rank_limit(argv)
        # strtod reads hex floats, so Redis takes 0x10 as a score; fakeredis does not.
        argv = [b"16" if a == b"0x10" else a for a in argv]
        if argv[0].lower() == b"zrandmember" and not isinstance(self.current, Err):
            # fakeredis answers [] for a missing key without a count (Redis: nil) and crashes
            # on a negative count for one; the redis-server machine checks these replies.
            return self.current
        if argv[0].lower() == b"zrangestore" and isinstance(self.current, Err):
            return self.current  # fakeredis deletes the destination before it validates
        wrongtype = self._zmpop_wrongtype(argv)
        if wrongtype is not None:
            return wrongtype
        try:
            reply = self.fake.call(argv)
        except AttributeError:
            if argv[0].lower() != b"zmpop":
                raise
            # fakeredis crashes on ZMPOP of a set (Redis: WRONGTYPE)
            reply = Err("WRONGTYPE Operation against a key holding the wrong kind of value")
        if argv[0].lower() == b"copy" and reply == 1:
            # fakeredis's COPY shares the value object (a later write to one key shows in
            # both); Redis copies deeply. Re-create the destination from a DUMP.
            payload = self.fake.call([b"dump", argv[2]])
            assert isinstance(payload, bytes)
            assert self.fake.call([b"restore", argv[2], b"0", payload, b"replace"]) == b"OK"
        if (
            argv[0].lower() == b"zrangestore"
            and isinstance(reply, Err)
            and "WRONGTYPE" in reply
            and self.fake.call([b"type", argv[2]]) in (b"zset", b"none")
        ):
            # Redis overwrites a destination of any type; fakeredis refuses. Do it Redis's way.
            self.fake.call([b"del", argv[1]])
            reply = self.fake.call(argv)
        return reply


_SETTINGS = settings(
    max_examples=scaled_examples(120),
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def wire_port() -> Iterator[int]:
    if REDIS_SERVER is None:
        pytest.fail("redis-server is not installed (needed as the reference)")
    with redis_server() as port:
        yield port


def test_against_redis_server(wire_port: int) -> None:
    WireMachine.port = wire_port
    run_machine(WireMachine)


def test_against_fakeredis() -> None:
    run_machine(FakeMachine)


def run_machine(cls: type[Machine]) -> None:
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(cls, settings=_SETTINGS)


def _unused(_: Any) -> None:
    pass
