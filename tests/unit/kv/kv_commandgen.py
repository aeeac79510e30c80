"""Random Redis command sequences for the differential tests (fakeredis and the wire).

`command(wire=False)` draws one argv. With `wire=True` every TTL is either far in the future
or an absolute deadline in the past, so that two servers with their own wall clocks answer
the same; without it TTLs are short and the test drives a controlled clock.
"""

from __future__ import annotations

from hypothesis import strategies as st

KEYS = [b"a", b"b", b"c", b"key:1", b"key:2", b"k*", b"hello", b""]
VALUES = [
    b"",
    b"0",
    b"1",
    b"-5",
    b"10",
    b"42",
    b"007",
    b"+1",
    b" 1",
    b"1.5",
    b"-0.25",
    b"3.0e3",
    b"abc",
    b"hello world",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"9223372036854775808",
    b"inf",
    b"\x00\xff\r\n",
]
# Dyadic increments: exact in doubles and long doubles alike, so fakeredis (which uses
# doubles) agrees with Redis; the wire test adds decimals that only real Redis gets right.
FLOAT_INCRS_EXACT = [b"0.5", b"-1.25", b"2", b"1e3", b"0", b"-0.5", b"abc", b""]
FLOAT_INCRS_WIRE = [*FLOAT_INCRS_EXACT, b"0.1", b"0.2", b"-3.3", b"1e-5", b"inf", b"0x10"]
INTS = [
    b"0",
    b"1",
    b"-1",
    b"3",
    b"-3",
    b"100",
    b"x",
    b"1.0",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"",
]
PATTERNS = [
    b"*",
    b"k*",
    b"key:?",
    b"[ab]",
    b"[^a]*",
    b"*e*",
    b"k\\*",
    b"[a-c]",
    b"h?llo",
    b"",
    b"[",
    b"\\",
]

COPY_OPTS = st.sampled_from([[], [b"replace"], [b"REPLACE"], [b"db", b"0"], [b"bogus"]])
keys = st.sampled_from(KEYS)
values = st.sampled_from(VALUES)
ints = st.sampled_from(INTS)


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode()
    except UnicodeDecodeError:
        return False
    return True


def _concat(parts: list[list[bytes]]) -> list[bytes]:
    return [x for part in parts for x in part]


def _cased(name: str) -> st.SearchStrategy[bytes]:
    return st.sampled_from([name.encode(), name.upper().encode()])


def ttl_seconds(wire: bool) -> st.SearchStrategy[bytes]:
    if wire:
        return st.sampled_from([b"100000", b"200000", b"0", b"-1", b"x", b"9223372036854775807"])
    return st.sampled_from([b"1", b"2", b"5", b"0", b"-1", b"x", b"9223372036854775807"])


def ttl_millis(wire: bool) -> st.SearchStrategy[bytes]:
    if wire:
        return st.sampled_from([b"100000000", b"200000000", b"0", b"-5", b"x"])
    return st.sampled_from([b"125", b"250", b"1000", b"2500", b"0", b"-5", b"x"])


def abs_seconds(base_ms: int) -> st.SearchStrategy[bytes]:
    """Absolute deadlines: long past, the far future, around `base_ms` (unit clock only)."""
    s = base_ms // 1000
    opts = [b"1000", b"4102444800", b"4102444801", b"-1"]
    if base_ms:
        opts += [str(s + d).encode() for d in (1, 2, 5)]
    return st.sampled_from(opts)


def abs_millis(base_ms: int) -> st.SearchStrategy[bytes]:
    opts = [b"1000000", b"4102444800000", b"4102444800500"]
    if base_ms:
        opts += [str(base_ms + d).encode() for d in (125, 1000, 3000)]
    return st.sampled_from(opts)


def set_options(wire: bool, base_ms: int) -> st.SearchStrategy[list[bytes]]:
    expiry = st.one_of(
        st.tuples(_cased("ex"), ttl_seconds(wire)),
        st.tuples(_cased("px"), ttl_millis(wire)),
        st.tuples(_cased("exat"), abs_seconds(base_ms)),
        st.tuples(_cased("pxat"), abs_millis(base_ms)),
        st.just((b"keepttl",)),
    ).map(list)
    flag = st.sampled_from([[b"nx"], [b"xx"], [b"get"], [b"GET"], [b"bogus"], [b"ex"]])
    return st.lists(st.one_of(expiry, flag), max_size=3).map(lambda parts: _concat(parts))


def getex_options(wire: bool, base_ms: int) -> st.SearchStrategy[list[bytes]]:
    one = st.one_of(
        st.tuples(st.just(b"ex"), ttl_seconds(wire)),
        st.tuples(st.just(b"px"), ttl_millis(wire)),
        st.tuples(st.just(b"exat"), abs_seconds(base_ms)),
        st.tuples(st.just(b"pxat"), abs_millis(base_ms)),
        st.just((b"persist",)),
        st.just((b"nx",)),
    ).map(list)
    return st.lists(one, max_size=2).map(lambda parts: _concat(parts))


def expire_flags() -> st.SearchStrategy[list[bytes]]:
    return st.lists(st.sampled_from([b"nx", b"xx", b"gt", b"lt", b"GT", b"bad"]), max_size=2)


def _cmd(*parts: st.SearchStrategy[object]) -> st.SearchStrategy[list[bytes]]:
    def flatten(items: tuple[object, ...]) -> list[bytes]:
        out: list[bytes] = []
        for item in items:
            if isinstance(item, list):
                out.extend(item)
            else:
                assert isinstance(item, bytes)
                out.append(item)
        return out

    return st.tuples(*parts).map(flatten)


def lit(word: str) -> st.SearchStrategy[bytes]:
    return st.just(word.encode())


def string_commands(wire: bool, base_ms: int) -> st.SearchStrategy[list[bytes]]:
    incrs = FLOAT_INCRS_WIRE if wire else FLOAT_INCRS_EXACT
    return st.one_of(
        _cmd(_cased("get"), keys),
        _cmd(_cased("set"), keys, values),
        _cmd(lit("set"), keys, values, set_options(wire, base_ms)),
        _cmd(lit("setnx"), keys, values),
        _cmd(lit("setex"), keys, ttl_seconds(wire), values),
        _cmd(lit("psetex"), keys, ttl_millis(wire), values),
        _cmd(lit("getset"), keys, values),
        _cmd(lit("getdel"), keys),
        _cmd(lit("getex"), keys, getex_options(wire, base_ms)),
        _cmd(lit("mget"), st.lists(keys, min_size=1, max_size=4)),
        _cmd(
            lit("mset"),
            st.lists(st.tuples(keys, values), min_size=1, max_size=3).map(
                lambda kv: [x for pair in kv for x in pair]
            ),
        ),
        _cmd(
            lit("msetnx"),
            st.lists(st.tuples(keys, values), min_size=1, max_size=3).map(
                lambda kv: [x for pair in kv for x in pair]
            ),
        ),
        # MSET with an odd count: inside MULTI fakeredis refuses it at queue time (Redis
        # queues it and fails at EXEC), so only the wire test sends it.
        *([_cmd(lit("mset"), keys, values, keys)] if wire else []),
        _cmd(lit("append"), keys, values),
        _cmd(lit("strlen"), keys),
        _cmd(lit("getrange"), keys, ints, ints),
        _cmd(lit("setrange"), keys, st.sampled_from([b"0", b"1", b"5", b"-1", b"x"]), values),
        _cmd(lit("incr"), keys),
        _cmd(lit("decr"), keys),
        _cmd(lit("incrby"), keys, ints),
        _cmd(lit("decrby"), keys, ints),
        _cmd(lit("incrbyfloat"), keys, st.sampled_from(incrs)),
    )


def key_commands(wire: bool, base_ms: int) -> st.SearchStrategy[list[bytes]]:
    some_keys = st.lists(keys, min_size=1, max_size=4)
    return st.one_of(
        _cmd(lit("del"), some_keys),
        _cmd(lit("unlink"), some_keys),
        _cmd(lit("exists"), some_keys),
        _cmd(lit("touch"), some_keys),
        _cmd(lit("type"), keys),
        _cmd(lit("keys"), st.sampled_from(PATTERNS)),
        _cmd(lit("dbsize")),
        _cmd(lit("rename"), keys, keys),
        _cmd(lit("renamenx"), keys, keys),
        _cmd(lit("copy"), keys, keys, COPY_OPTS),
        _cmd(lit("randomkey")),
        _cmd(lit("scan"), st.sampled_from([b"0"])),  # replayed as a full iteration
    )


def expiry_commands(wire: bool, base_ms: int) -> st.SearchStrategy[list[bytes]]:
    return st.one_of(
        _cmd(lit("expire"), keys, ttl_seconds(wire), expire_flags()),
        _cmd(lit("pexpire"), keys, ttl_millis(wire), expire_flags()),
        _cmd(lit("expireat"), keys, abs_seconds(base_ms), expire_flags()),
        _cmd(lit("pexpireat"), keys, abs_millis(base_ms), expire_flags()),
        _cmd(lit("ttl"), keys),
        _cmd(lit("pttl"), keys),
        _cmd(lit("expiretime"), keys),
        _cmd(lit("pexpiretime"), keys),
        _cmd(lit("persist"), keys),
    )


def misc_commands() -> st.SearchStrategy[list[bytes]]:
    return st.one_of(
        _cmd(lit("ping")),
        _cmd(lit("echo"), values),
        # Error texts are str: non-UTF-8 argument bytes are not echoed back byte for byte.
        _cmd(lit("nosuchcommand"), st.lists(values.filter(_is_utf8), max_size=2)),
        _cmd(lit("get")),  # arity error
        _cmd(lit("set"), keys),  # arity error
        _cmd(lit("select"), st.sampled_from([b"0", b"x"])),
    )


def txn_commands() -> st.SearchStrategy[list[bytes]]:
    return st.one_of(
        _cmd(lit("multi")),
        _cmd(lit("exec")),
        _cmd(lit("discard")),
        _cmd(lit("watch"), st.lists(keys, min_size=1, max_size=3)),
        _cmd(lit("unwatch")),
    )


def command(wire: bool = False, base_ms: int = 0) -> st.SearchStrategy[list[bytes]]:
    """Any one command of the differential mix."""
    return st.one_of(
        string_commands(wire, base_ms),
        key_commands(wire, base_ms),
        expiry_commands(wire, base_ms),
        misc_commands(),
        txn_commands(),
    )


UNORDERED = {b"keys"}
"""Commands whose array reply is a set (order is an implementation detail)."""
