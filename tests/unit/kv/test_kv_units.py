"""Unit tests for the keyspace pieces the differential tests cannot reach.

Sessions (AUTH, HELLO, MULTI errors, CLIENT, COMMAND), WATCH tokens under expiry, snapshots
and digests, SCAN cursor stability under churn, glob quirks, long-double formatting, op codecs.
"""

from __future__ import annotations

import fnmatch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aspen.kv.glob import glob_match
from aspen.kv.keyspace import Keyspace
from aspen.kv.numbers import format_long_double, parse_int, parse_long_double, round_ld
from aspen.kv.ops import OpDecodeError, ReadOp, TxnOp, WriteOp, decode
from aspen.kv.session import Session
from aspen.resp import values as v
from harness.local_kv import LocalContext, LocalExecutor

T0 = 1_700_000_000_000


class Harness:
    def __init__(self, requirepass: bytes | None = None) -> None:
        self.now = T0
        self.ks = Keyspace()
        self.ex = LocalExecutor(self.ks, lambda: self.now)
        self.ctx = LocalContext(
            self.ks,
            requirepass=requirepass,
            clock=lambda: self.now,
            settings={b"databases": b"1", b"maxmemory": b"0"},
        )
        self.s = Session(7, self.ctx)

    def __call__(self, *args: str | bytes, session: Session | None = None) -> object:
        s = session or self.s
        argv = [a.encode() if isinstance(a, str) else a for a in args]
        out = s.handle(argv)
        if isinstance(out, (ReadOp, WriteOp, TxnOp)):
            out = s.finish(out, self.ex.execute(out))
        return out


def test_auth_flow_matches_redis() -> None:
    h = Harness(requirepass=b"sekret")
    assert h("get", "a") == v.Error("NOAUTH Authentication required.")
    assert h("auth", "wrong") == v.Error(
        "WRONGPASS invalid username-password pair or user is disabled."
    )
    assert h("auth", "bob", "sekret").message.startswith("WRONGPASS")  # type: ignore[union-attr]
    assert h("auth", "default", "sekret") == v.OK
    assert h("get", "a") is None
    assert h("reset") == v.SimpleString("RESET")
    assert h("get", "a") == v.Error("NOAUTH Authentication required.")


def test_auth_without_password_configured() -> None:
    h = Harness()
    assert h("auth", "x").message.startswith("ERR AUTH <password> called without")  # type: ignore[union-attr]
    assert h("auth", "default", "anything") == v.OK
    assert h("auth", "a", "b", "c") == v.Error("ERR syntax error")


def test_hello_switches_protocol_and_authenticates() -> None:
    h = Harness(requirepass=b"pw")
    assert h("hello", "3").message.startswith("NOAUTH HELLO must be called")  # type: ignore[union-attr]
    assert h.s.protocol == 2
    reply = h("hello", "3", "auth", "default", "pw", "setname", "conn1")
    assert isinstance(reply, v.Map)
    fields = dict(reply.items)
    assert fields[b"proto"] == 3 and fields[b"id"] == 7
    assert h.s.protocol == 3 and h("client", "getname") == b"conn1"
    assert h("hello", "4") == v.Error("NOPROTO unsupported protocol version")
    assert h("hello", "x") == v.Error("ERR Protocol version is not an integer or out of range")


def test_select_and_quit() -> None:
    h = Harness()
    assert h("select", "0") == v.OK
    assert h("select", "16") == v.Error("ERR DB index is out of range")
    assert h("quit") == v.OK and h.s.should_close


def test_multi_errors() -> None:
    h = Harness()
    assert h("exec") == v.Error("ERR EXEC without MULTI")
    assert h("discard") == v.Error("ERR DISCARD without MULTI")
    assert h("multi") == v.OK
    assert h("multi") == v.Error("ERR MULTI calls can not be nested")
    assert h("watch", "a") == v.Error("ERR WATCH inside MULTI is not allowed")
    assert h("set", "a", "1") == v.QUEUED
    assert h("get").message.startswith("ERR wrong number")  # type: ignore[union-attr]
    assert h("exec") == v.Error("EXECABORT Transaction discarded because of previous errors.")
    assert h("get", "a") is None  # nothing ran


def test_multi_runs_session_commands_in_order() -> None:
    h = Harness()
    h("multi")
    h("set", "a", "1")
    h("ping")
    h("incr", "a")
    h("echo", "x")
    assert h("exec") == [v.OK, v.PONG, 2, b"x"]


def test_watch_aborts_on_change_by_other_client_and_on_expiry() -> None:
    h = Harness()
    other = Session(8, h.ctx)
    h("set", "a", "1")
    h("watch", "a")
    h("set", "a", "2", session=other)
    h("multi")
    h("get", "a")
    assert h("exec") == v.NULL_ARRAY
    # A key that expires between WATCH and EXEC aborts too (Redis 7).
    h("set", "b", "1", "px", "100")
    h("watch", "b")
    h.now += 101
    h("multi")
    h("get", "b")
    assert h("exec") == v.NULL_ARRAY
    # Dropping an already-expired key is no logical change: EXEC goes through.
    h("watch", "b")
    h.ex.expire_some(10)
    h("multi")
    h("get", "b")
    assert h("exec") == [None]


def test_watch_sees_delete_then_recreate() -> None:
    h = Harness()
    h("watch", "k")
    h("set", "k", "1", session=Session(9, h.ctx))
    h("del", "k", session=Session(9, h.ctx))
    h("multi")
    assert h("exec") == v.NULL_ARRAY


def test_command_introspection() -> None:
    h = Harness()
    count = h("command", "count")
    assert isinstance(count, int) and count >= 60
    info = h("command", "info", "get", "nope")
    assert isinstance(info, list) and info[1] is None
    assert info[0][:2] == [b"get", 2] and info[0][3:6] == [1, 1, 1]
    docs = h("command", "docs", "set")
    assert isinstance(docs, v.Map) and docs.items[0][0] == b"set"
    assert h("command", "getkeys", "mset", "a", "1", "b", "2") == [b"a", b"b"]
    assert h("command", "getkeys", "ping", "x") == v.Error("ERR The command has no key arguments")
    assert h("client", "nope") == v.Error("ERR unknown subcommand 'nope'. Try CLIENT HELP.")
    assert h("client", "setname") == v.Error(
        "ERR wrong number of arguments for 'client|setname' command"
    )


def test_config_get_and_info() -> None:
    h = Harness()
    assert h("config", "get", "data*") == v.Map([(b"databases", b"1")])
    h("set", "a", "1", "ex", "10")
    info = h("info", "keyspace")
    assert isinstance(info, v.Verbatim)
    assert b"db0:keys=1,expires=1" in info.text


def test_reads_never_mutate_and_digest_is_replica_independent() -> None:
    a, b = Harness(), Harness()
    for h in (a, b):
        h("set", "x", "1", "px", "50")
        h("set", "y", "2")
        h("del", "y")
    a.now += 100
    before = a.ks.digest()
    assert a("get", "x") is None and a("exists", "x") == 0 and a("keys", "*") == []
    assert a.ks.digest() == before  # reads left the expired key in place
    restored = Keyspace.restore(a.ks.snapshot())
    assert restored.digest() == a.ks.digest() == b.ks.digest()


@settings(max_examples=40, deadline=None)
@given(ops=st.lists(st.tuples(st.sampled_from(["set", "del"]), st.integers(0, 30)), max_size=80))
def test_scan_returns_every_key_present_throughout(ops: list[tuple[str, int]]) -> None:
    h = Harness()
    for i in range(20):
        h("set", f"k{i}", "v")
    stable = {f"k{i}".encode() for i in range(0, 20, 2)}
    seen: set[bytes] = set()
    cursor = b"0"
    it = iter(ops)
    while True:
        reply = h("scan", cursor, "count", "3")
        assert isinstance(reply, list)
        cursor, page = reply
        seen.update(page)
        for name, n in [next(it, ("set", 99))]:
            key = f"k{n}"
            if key.encode() not in stable:
                h(name, key, *(["v"] if name == "set" else []))
        if cursor == b"0":
            break
    assert stable <= seen


def test_snapshot_roundtrip_keeps_ttls_versions_and_scan() -> None:
    h = Harness()
    for i in range(10):
        h("set", f"k{i}", str(i), "px", "1000" if i % 2 else "0") if i % 2 else h(
            "set", f"k{i}", str(i)
        )
    h("del", "k3")
    ks2 = Keyspace.restore(h.ks.snapshot())
    assert ks2.digest() == h.ks.digest()
    for key in (b"k1", b"k3", b"k4"):
        assert ks2.watch_token(key, h.now) == h.ks.watch_token(key, h.now)
        assert ks2.deadline(key) == h.ks.deadline(key)


@pytest.mark.parametrize(
    ("pattern", "string", "expected"),
    [
        (b"h?llo", b"hello", True),
        (b"h[^e]llo", b"hello", False),
        (b"h[a-b]llo", b"hbllo", True),
        (b"h[b-a]llo", b"hallo", True),  # reversed range
        (b"k\\*", b"k*", True),
        (b"k\\*", b"kx", False),
        (b"[", b"[", False),  # unterminated empty class matches nothing
        (b"[abc", b"b", True),  # unterminated class still matches one listed char
        (b"\\", b"\\", True),  # trailing backslash is literal
        (b"*", b"\n", True),
        (b"a*b*c", b"axxbyyc", True),
        (b"[]a]", b"]a]", False),
    ],
)
def test_glob_quirks(pattern: bytes, string: bytes, expected: bool) -> None:
    assert glob_match(pattern, string) is expected


@given(st.text("ab*?", max_size=6), st.text("ab", min_size=1, max_size=6))
def test_glob_agrees_with_fnmatch_on_plain_patterns(pattern: str, string: str) -> None:
    # non-empty strings only: in Redis the empty string matches only the empty pattern
    assert glob_match(pattern.encode(), string.encode()) == fnmatch.fnmatchcase(string, pattern)


@pytest.mark.parametrize(
    ("a", "b", "out"),
    [
        (b"0.1", b"0.2", b"0.3"),
        (b"10.5", b"0.1", b"10.6"),
        (b"5", b"-5", b"0"),
        (b"1.1", b"2.2", b"3.3"),
        (b"-9223372036854775808", b"0.5", b"-9223372036854775807.5"),
    ],
)
def test_long_double_sum_prints_like_redis(a: bytes, b: bytes, out: bytes) -> None:
    x, y = parse_long_double(a), parse_long_double(b)
    assert x is not None and y is not None
    total = round_ld(x + y)  # type: ignore[operator]
    assert format_long_double(total) == out  # type: ignore[arg-type]


def test_number_parsing_is_strict() -> None:
    assert parse_int(b"-12") == -12
    for bad in (b"+1", b" 1", b"01", b"-0", b"1.0", b"", b"9223372036854775808"):
        assert parse_int(bad) is None
    for bad in (b" 1", b"nan", b"1e-5000", b"1e5000", b"abc", b""):
        assert parse_long_double(bad) is None


@given(
    st.one_of(
        st.lists(st.binary(max_size=8), min_size=1, max_size=4).map(lambda a: ReadOp(tuple(a))),
        st.lists(st.binary(max_size=8), min_size=1, max_size=4).map(lambda a: WriteOp(tuple(a))),
        st.builds(
            TxnOp,
            st.lists(
                st.lists(st.binary(max_size=4), min_size=1, max_size=3).map(tuple), max_size=3
            ).map(tuple),
            st.lists(
                st.tuples(st.binary(max_size=4), st.integers(-(2**40), 2**40)), max_size=3
            ).map(tuple),
        ),
    )
)
def test_ops_roundtrip(op: ReadOp | WriteOp | TxnOp) -> None:
    assert decode(op.encode()) == op


@given(st.binary(max_size=40))
def test_op_decode_rejects_garbage_cleanly(data: bytes) -> None:
    try:
        decode(data)
    except OpDecodeError:
        pass


def test_size_limit_is_checked_before_allocating() -> None:
    h = Harness()
    assert h("setrange", "big", str(512 * 1024 * 1024), "x") == v.Error(
        "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
    )
    assert h("exists", "big") == 0


def test_a_table_command_without_a_session_handler_is_an_error_not_a_crash() -> None:
    """ASPEN.* admin commands are in the table (for COMMAND) but served by the node layer."""
    from aspen.kv.keyspace import Keyspace
    from aspen.kv.session import Session
    from aspen.resp.values import Error
    from harness.local_kv import LocalContext

    session = Session(1, LocalContext(Keyspace()))
    reply = session.handle([b"ASPEN.STATUS"])
    assert isinstance(reply, Error)
    assert "not available" in reply.message
    assert session.handle([b"PING"]) is not None  # the session still works
