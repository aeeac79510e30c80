"""SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD[_RO], LCS and SUBSTR against redis-server
7.0.15: generated command sequences, every reply compared type-exactly in RESP2 and RESP3,
and the strings themselves (GET of every key) after each sequence."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from data_oracle import Pair, redis_pair
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.hypothesis_budget import scaled_examples

pytestmark = pytest.mark.differential

KEYS = [b"b1", b"b2", b"b3"]
OTHER = b"lst"  # holds a list: WRONGTYPE everywhere

Cmd = st.SearchStrategy[list[bytes]]


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    yield from redis_pair()


def w(*words: str) -> Cmd:
    return st.just([x.encode() for x in words])


def seq(*parts: Cmd) -> Cmd:
    return st.tuples(*parts).map(lambda xs: [a for x in xs for a in x])


key = st.sampled_from([*KEYS, b"nokey", OTHER]).map(lambda k: [k])
small = st.integers(-40, 200).map(lambda n: [str(n).encode()])
odd_numbers = st.sampled_from(
    [b"x", b"", b"1.5", b"+1", b"01", b"-0", b"9223372036854775807", b"-9223372036854775808",
     b"9223372036854775808", b"4294967296", b"4294967295"]
).map(lambda n: [n])
number = st.one_of(small, small, small, odd_numbers)
# no large valid offset: SETBIT k 4294967295 1 really builds a 512 MB string on both sides
offset = st.one_of(
    st.integers(0, 90).map(lambda n: [str(n).encode()]),
    st.sampled_from([b"x", b"", b"-1", b"01", b"1.5", b"4294967296", b"9223372036854775807",
                     b"-9223372036854775808"]).map(lambda n: [n]),
)
bit = st.one_of(st.sampled_from([[b"0"], [b"1"]]), number)
unit = st.sampled_from([[b"bit"], [b"BYTE"], [b"byte"], [b"Bit"], [b"bits"]])
value = st.binary(max_size=12).map(lambda v: [v]) | st.sampled_from(
    [[b"\xff\xf0\x00"], [b"\x00\x00\x00"], [b"\xff\xff"], [b"foobar"], [b"12345"], [b""]]
)
btype = st.one_of(
    st.sampled_from([b"i", b"u"]).flatmap(
        lambda s: st.integers(1, 64).map(lambda n: [s + str(n).encode()])
    ),
    st.sampled_from([[b"u64"], [b"i65"], [b"i0"], [b"x8"], [b"I8"], [b"u"]]),
)
boffset = st.one_of(
    st.integers(0, 100).map(lambda n: [str(n).encode()]),
    st.integers(0, 12).map(lambda n: [b"#" + str(n).encode()]),
    st.sampled_from([[b"#-1"], [b"-1"], [b"#x"], [b"x"]]),
)
field_value = st.one_of(
    st.integers(-300, 300).map(lambda n: [str(n).encode()]),
    st.integers(-(2**63), 2**63 - 1).map(lambda n: [str(n).encode()]),
    st.sampled_from([[b"x"], [b"1.5"]]),
)
bitfield_op = st.one_of(
    seq(w("GET"), btype, boffset),
    seq(w("SET"), btype, boffset, field_value),
    seq(w("INCRBY"), btype, boffset, field_value),
    seq(w("OVERFLOW"), st.sampled_from([[b"WRAP"], [b"sat"], [b"FAIL"], [b"bogus"]])),
    st.sampled_from([[b"get"], [b"set", b"u8"], [b"frob", b"u8", b"0"]]),
)
bitfield_ops = st.lists(bitfield_op, max_size=5).map(lambda ops: [a for op in ops for a in op])
lcs_opts = st.lists(
    st.one_of(
        st.sampled_from([[b"LEN"], [b"IDX"], [b"WITHMATCHLEN"], [b"bogus"]]),
        seq(w("MINMATCHLEN"), st.one_of(st.integers(-1, 4).map(lambda n: [str(n).encode()]),
                                         st.just([b"x"]))),
    ),
    max_size=3,
).map(lambda ops: [a for op in ops for a in op])

command = st.one_of(
    seq(w("SET"), st.sampled_from(KEYS).map(lambda k: [k]), value),
    seq(w("APPEND"), st.sampled_from(KEYS).map(lambda k: [k]), value),
    seq(w("SETBIT"), key, offset, bit),
    seq(w("SETBIT"), key, offset, bit),
    seq(w("GETBIT"), key, offset),
    seq(w("BITCOUNT"), key),
    seq(w("BITCOUNT"), key, number, number),
    seq(w("BITCOUNT"), key, number, number, unit),
    seq(w("BITCOUNT"), key, number),
    seq(w("BITPOS"), key, bit),
    seq(w("BITPOS"), key, bit, number),
    seq(w("BITPOS"), key, bit, number, number),
    seq(w("BITPOS"), key, bit, number, number, unit),
    seq(w("BITPOS"), key, bit, number, number, unit, unit),
    seq(w("BITOP"), st.sampled_from([[b"AND"], [b"or"], [b"XOR"], [b"NOT"], [b"nand"]]), key,
        st.lists(key, min_size=1, max_size=3).map(lambda ks: [a for k in ks for a in k])),
    seq(w("BITFIELD"), key, bitfield_ops),
    seq(w("BITFIELD_RO"), key, bitfield_ops),
    seq(w("LCS"), key, key, lcs_opts),
    seq(w("SUBSTR"), key, number, number),
    seq(w("GETRANGE"), key, number, number),
)


@settings(
    max_examples=scaled_examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(steps=st.lists(st.tuples(st.sampled_from([2, 3]), command), max_size=25))
def test_bit_commands_match_redis_server(
    pair: Pair, steps: list[tuple[int, list[bytes]]]
) -> None:
    pair.reset()
    pair.check([b"RPUSH", OTHER, b"x"])
    for protocol, argv in steps:
        pair.check(argv, protocol)
    for k in KEYS:
        pair.check([b"GET", k])


SCRIPT = """\
set k foobar|bitcount k|bitcount k 0 0|bitcount k 1 1|bitcount k 5 30 bit|bitcount k -1 -2 bit
bitpos k 1|bitpos k 0|set z \\x00\\x00|bitpos z 1|bitpos z 0|bitpos z 0 0 -1|bitpos z 1 7 15 bit
set f \\xff\\xff|bitpos f 0|bitpos f 0 0|bitpos f 0 0 -1|bitpos f 0 2 12 bit|bitpos nokey 0
setbit bm 100 1|get bm|setbit bm 100 0|strlen bm|setbit bm 4294967296 1|setbit bm -1 1
bitfield bf set u8 0 255 get u8 0|bitfield bf incrby u2 100 1 overflow sat incrby u2 102 5
bitfield bf overflow fail incrby i8 #0 200 get i8 #0|bitfield bf get u63 0 get i64 3|get bf
bitfield_ro bf get u8 0|bitfield_ro bf set u8 0 1|bitfield bf|bitfield bf get u64 0
set a ohmytext|set b mynewtext|lcs a b|lcs a b len|lcs a b idx|lcs a b idx minmatchlen 4
lcs a b idx withmatchlen|lcs a b idx len|lcs a b len minmatchlen 2 withmatchlen|lcs a nokey
bitop and dest a b|get dest|bitop not dest a|get dest|bitop or dest nokey|exists dest
bitop xor dest a b nokey|get dest|bitop not dest a b|substr a 1 3|substr a -3 -1"""


def test_scripted_bit_commands_match_redis_server(pair: Pair) -> None:
    pair.reset()
    for protocol in (2, 3):
        pair.reset()
        for row in SCRIPT.splitlines():
            for line in row.split("|"):
                argv = [a.encode().decode("unicode_escape").encode("latin-1")
                        for a in line.split(" ")]
                pair.check(argv, protocol)
