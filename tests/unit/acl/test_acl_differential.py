"""ACL against a real redis-server 7.0.15, reply by reply.

Hypothesis draws ACL SETUSER rule lists (passwords, key and channel patterns, commands,
categories, first args, selectors, resets, and rules Redis refuses); both sides get the same
ones and must answer alike: the SETUSER reply, ACL GETUSER and ACL LIST. Then commands run
as that user are compared: ACL DRYRUN's verdict, and the real command's reply class (the
exact NOPERM text, or the same reply when allowed).

Redis prints a user's single-command rules in the order of its command hash table, which
is random per server (its hash seed); those rules are compared as a multiset, the rest
(flags, passwords, patterns, "+@all"/"-@all" and the category rules) exactly.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aspen.kv.keyspace import Keyspace
from aspen.kv.ops import ReadOp, TxnOp, WriteOp
from aspen.kv.session import Session
from aspen.resp.protocol import encode
from harness.bench.servers import redis_server as reference_server
from harness.hypothesis_budget import scaled_examples
from harness.local_kv import LocalContext, LocalExecutor
from harness.resp_wire import Err, Map, RespClient, SetReply, parse_reply

pytestmark = pytest.mark.differential

REDIS_SERVER = shutil.which("redis-server")
NOW = 1_700_000_000_000


@contextlib.contextmanager
def redis_server() -> Iterator[int]:
    """The reference redis-server on a free port (harness.bench.servers); its port."""
    with reference_server() as server:
        yield server.port


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    if REDIS_SERVER is None:
        pytest.fail("redis-server is not installed (needed as the reference)")
    with redis_server() as p:
        yield p


class Aspen:
    def __init__(self) -> None:
        self.keyspace = Keyspace()
        self.executor = LocalExecutor(self.keyspace, lambda: NOW)
        self.ctx = LocalContext(self.keyspace, clock=lambda: NOW)
        self.admin = Session(1, self.ctx)

    def session(self, client_id: int) -> Session:
        return Session(client_id, self.ctx)

    def call(self, argv: list[bytes], session: Session | None = None) -> object:
        session = session or self.admin
        out = session.handle(argv)
        if isinstance(out, (ReadOp, WriteOp, TxnOp)):
            out = session.finish(out, self.executor.execute(out))
        return parse_reply(encode(out, 2))


# ------------------------------------------------------------------ generated rules

HASH = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"  # sha256("password")
COMMANDS = [
    "get",
    "set",
    "del",
    "hset",
    "hget",
    "lpush",
    "lmove",
    "rename",
    "mget",
    "exists",
    "publish",
    "subscribe",
    "client",
    "config",
    "ping",
    "zunionstore",
    "sort",
    "acl",
    "echo",
    "incr",
    "object",
    "xread",
    "georadius",
    "migrate",
    "keys",
    "flushall",
]
SUBS = [
    "client|id",
    "client|list",
    "client|setname",
    "config|get",
    "config|set",
    "acl|whoami",
    "acl|setuser",
    "object|encoding",
]
CATS = [
    "all",
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
]
PATTERNS = ["a*", "b*", "x", "*", "a?", "[ab]*", "k\\*"]


def _simple_rule() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(
            [
                "on",
                "off",
                "nopass",
                "resetpass",
                "allkeys",
                "resetkeys",
                "allchannels",
                "resetchannels",
                "allcommands",
                "nocommands",
                "sanitize-payload",
                "skip-sanitize-payload",
                "ON",
                "AllKeys",
                "bogus",
                "+@bogus",
                "-nosuchcmd",
                "+select|0",
                "+select|1",
                "+client|nosuch",
                "+client|id|x",
                "+get|",
                "%X~a",
                "~a b",
            ]
        ),
        st.sampled_from(["pw1", "pw2", ""]).map(lambda p: ">" + p),
        st.sampled_from(["pw1", "pw2"]).map(lambda p: "<" + p),
        st.sampled_from([HASH, HASH.upper(), "abc"]).flatmap(
            lambda h: st.sampled_from(["#" + h, "!" + h])
        ),
        st.sampled_from(PATTERNS).flatmap(
            lambda p: st.sampled_from(["~" + p, "%R~" + p, "%W~" + p, "%RW~" + p, "%wr~" + p])
        ),
        st.sampled_from(["ch*", "news", "*", "n?ws"]).map(lambda p: "&" + p),
        st.sampled_from(COMMANDS + SUBS).flatmap(lambda c: st.sampled_from(["+" + c, "-" + c])),
        st.sampled_from(CATS).flatmap(lambda c: st.sampled_from(["+@" + c, "-@" + c])),
    )


def _selector() -> st.SearchStrategy[list[str]]:
    inner = st.lists(
        st.one_of(
            st.sampled_from(PATTERNS).map(lambda p: "~" + p),
            st.sampled_from(PATTERNS).map(lambda p: "%R~" + p),
            st.sampled_from(COMMANDS).map(lambda c: "+" + c),
            st.sampled_from(CATS).map(lambda c: "+@" + c),
            st.sampled_from(["&ch*", "allkeys", "-@all"]),
        ),
        min_size=1,
        max_size=4,
    )
    return inner.flatmap(
        lambda parts: st.sampled_from(
            [
                ["(" + " ".join(parts) + ")"],
                ["(" + parts[0], *parts[1:-1], parts[-1] + ")"]
                if len(parts) > 1
                else ["(" + parts[0]],
            ]
        )
    )


RULE_LIST = st.lists(
    st.one_of(
        _simple_rule().map(lambda r: [r]),
        _selector(),
        st.sampled_from([["clearselectors"], ["reset"]]),
    ),
    min_size=1,
    max_size=8,
).map(lambda groups: [r for g in groups for r in g])

KEYS = ["a1", "b1", "x", "k*", "ab"]
CALLS = st.one_of(
    st.tuples(st.sampled_from(["get", "incr", "exists", "del"]), st.sampled_from(KEYS)).map(list),
    st.tuples(st.just("set"), st.sampled_from(KEYS), st.just("v")).map(list),
    st.tuples(st.just("set"), st.sampled_from(KEYS), st.just("v"), st.just("GET")).map(list),
    st.tuples(st.just("mget"), st.sampled_from(KEYS), st.sampled_from(KEYS)).map(list),
    st.tuples(
        st.just("lmove"),
        st.sampled_from(KEYS),
        st.sampled_from(KEYS),
        st.just("left"),
        st.just("right"),
    ).map(list),
    st.tuples(st.just("rename"), st.sampled_from(KEYS), st.sampled_from(KEYS)).map(list),
    st.tuples(
        st.just("zunionstore"),
        st.sampled_from(KEYS),
        st.just("2"),
        st.sampled_from(KEYS),
        st.sampled_from(KEYS),
    ).map(list),
    st.tuples(
        st.just("bitfield"),
        st.sampled_from(KEYS),
        st.sampled_from(
            [
                ["get", "u4", "0"],
                ["incrby", "u4", "0", "1"],
                ["overflow"],
                ["overflow", "sat", "get", "u4", "0"],
            ]
        ),
    ).map(lambda t: [t[0], t[1], *t[2]]),
    st.tuples(
        st.just("sort"),
        st.sampled_from(KEYS),
        st.sampled_from([[], ["store", "b1"], ["by", "nosort", "store", "x"]]),
    ).map(lambda t: [t[0], t[1], *t[2]]),
    st.tuples(
        st.just("xread"),
        st.just("streams"),
        st.sampled_from(KEYS),
        st.sampled_from(KEYS),
        st.just("0"),
        st.just("0"),
    ).map(list),
    st.tuples(
        st.just("georadius"),
        st.sampled_from(KEYS),
        st.just("0"),
        st.just("0"),
        st.just("10"),
        st.just("km"),
        st.just("store"),
        st.sampled_from(KEYS),
    ).map(list),
    st.tuples(st.just("object"), st.just("encoding"), st.sampled_from(KEYS)).map(list),
    st.tuples(st.just("hset"), st.sampled_from(KEYS), st.just("f"), st.just("v")).map(list),
    st.tuples(
        st.sampled_from(["subscribe", "psubscribe"]),
        st.sampled_from(["news", "ch*", "n?ws", "chat"]),
        st.sampled_from(["news", "ch1", "*"]),
    ).map(list),
    st.tuples(st.just("publish"), st.sampled_from(["news", "chat", "ch1"]), st.just("m")).map(list),
    st.sampled_from(
        [
            ["ping"],
            ["echo", "x"],
            ["client", "id"],
            ["config", "get", "maxmemory"],
            ["select", "0"],
            ["select", "1"],
            ["acl", "whoami"],
            ["keys", "*"],
            ["flushall"],
            ["client", "list"],
        ]
    ),
)


def command_rules_norm(text: str) -> tuple[list[str], list[str]]:
    """The ordered part ("+@all"/"-@all" and the category rules) and the rest, sorted."""
    tokens = text.split()
    head = []
    while tokens and tokens[0][:2] in ("+@", "-@"):
        head.append(tokens.pop(0))
    return head, sorted(tokens)


def list_line_norm(line: str) -> list[object]:
    """An ACL LIST line with each selector's command rules normalised."""
    out: list[object] = []
    for part in line.replace("(", "\x00(").split("\x00"):
        tokens = part.strip("() ").split()
        rest = [t for t in tokens if t[:1] not in "+-" or t in ("+@all", "-@all")]
        cmds = [t for t in tokens if t[:1] in "+-" and t not in ("+@all", "-@all")]
        cats = [t for t in cmds if t[:2] in ("+@", "-@")]
        out.append((rest, cats, sorted(t for t in cmds if t[:2] not in ("+@", "-@"))))
    return out


def getuser_norm(reply: object) -> object:
    if not isinstance(reply, list):
        return reply
    fields = dict(zip(reply[::2], reply[1::2], strict=True))
    fields[b"flags"] = sorted(fields[b"flags"])
    fields[b"commands"] = command_rules_norm(fields[b"commands"].decode())
    selectors = []
    for sel in fields[b"selectors"]:
        s = dict(zip(sel[::2], sel[1::2], strict=True))
        s[b"commands"] = command_rules_norm(s[b"commands"].decode())
        selectors.append(s)
    fields[b"selectors"] = selectors
    return fields


def _b(args: list[str]) -> list[bytes]:
    return [a.encode() for a in args]


def _noperm_class(reply: object) -> object:
    """A command's reply as far as ACL decides it: the NOPERM error, or "ran"."""
    if isinstance(reply, Err) and reply.startswith("NOPERM"):
        return str(reply)
    return "ran"


_SETTINGS = settings(
    max_examples=scaled_examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@_SETTINGS
@given(rules=st.lists(RULE_LIST, min_size=1, max_size=3), calls=st.lists(CALLS, max_size=8))
def test_setuser_and_permissions_match_redis(
    port: int, rules: list[list[str]], calls: list[list[str]]
) -> None:
    redis_admin = RespClient(port)
    redis_user = RespClient(port)
    try:
        redis_admin.call([b"ACL", b"DELUSER", b"u"])
        redis_admin.call([b"FLUSHALL"])
        aspen = Aspen()
        for rule_list in rules:
            argv = [b"ACL", b"SETUSER", b"u", *_b(rule_list)]
            assert aspen.call(argv) == redis_admin.call(argv), rule_list
            getuser = [b"ACL", b"GETUSER", b"u"]
            assert getuser_norm(aspen.call(getuser)) == getuser_norm(redis_admin.call(getuser))
            ours = aspen.call([b"ACL", b"LIST"])
            theirs = redis_admin.call([b"ACL", b"LIST"])
            assert isinstance(ours, list) and isinstance(theirs, list)
            assert [list_line_norm(x.decode()) for x in ours] == [
                list_line_norm(x.decode()) for x in theirs
            ]
        # Log in as u (on, with a known password) and compare what it may run.
        login = [b"ACL", b"SETUSER", b"u", b"on", b">pw"]
        assert aspen.call(login) == redis_admin.call(login)
        session = aspen.session(7)
        auth = [b"AUTH", b"u", b"pw"]
        assert aspen.call(auth, session) == redis_user.call(auth)
        for call in calls:
            argv = _b(call)
            dry = [b"ACL", b"DRYRUN", b"u", *argv]
            assert aspen.call(dry) == redis_admin.call(dry), call
            if call[0] in ("subscribe", "psubscribe"):
                continue  # DRYRUN only: subscribing changes the connection's mode
            ours_run = aspen.call(argv, session)
            theirs_run = redis_user.call(argv)
            if call[0] in ("client", "publish"):  # ids differ; no pub/sub hub here
                assert _noperm_class(ours_run) == _noperm_class(theirs_run), call
            else:
                assert ours_run == theirs_run, call
    finally:
        redis_admin.close()
        redis_user.close()


def test_catalogue_is_redis_own(port: int) -> None:
    """ACL CAT and ACL CAT <category> list what the reference lists."""
    aspen = Aspen()
    client = RespClient(port)
    try:
        assert aspen.call([b"ACL", b"CAT"]) == client.call([b"ACL", b"CAT"])
        for cat in CATS[1:]:
            argv = [b"ACL", b"CAT", cat.encode()]
            assert sorted(aspen.call(argv)) == sorted(client.call(argv)), cat  # type: ignore[arg-type]
        for argv in (
            [b"ACL", b"CAT", b"nope"],
            [b"ACL", b"GENPASS", b"0"],
            [b"ACL", b"GENPASS", b"x"],
            [b"ACL", b"LOG", b"x"],
            [b"ACL", b"DRYRUN", b"nobody", b"get", b"a"],
            [b"ACL", b"DRYRUN", b"default", b"nosuch"],
            [b"ACL", b"DRYRUN", b"default", b"get"],
            [b"ACL", b"DELUSER", b"default"],
            [b"ACL", b"GETUSER", b"nobody"],
            [b"ACL", b"SETUSER", b"a b"],
            [b"ACL", b"SETUSER", b"v", b"(+get", b"~x"],
            [b"ACL", b"HELP"],
            [b"ACL", b"NOSUCH"],
            [b"ACL", b"WHOAMI"],
            [b"ACL", b"GETUSER", b"default"],
            [b"AUTH", b"x"],
            [b"AUTH", b"nobody", b"x"],
        ):
            assert aspen.call(argv) == client.call(argv), argv
        assert len(aspen.call([b"ACL", b"GENPASS"])) == 64  # type: ignore[arg-type]
        assert len(aspen.call([b"ACL", b"GENPASS", b"5"])) == 2  # type: ignore[arg-type]
    finally:
        client.close()


def _unused() -> tuple[type, type]:
    return Map, SetReply
