"""Key extraction for COMMAND GETKEYS: numkeys counts read as Redis reads them.

The differential test (tests/integration/test_getkeys_vs_redis.py) compares whole replies
with redis-server; here the C pieces are checked against libc itself.
"""

from __future__ import annotations

import ctypes
import ctypes.util

from hypothesis import given
from hypothesis import strategies as st

from aspen.kv import spec as commands
from aspen.kv.commands import lookup

_libc = ctypes.CDLL(ctypes.util.find_library("c"))
_libc.atoi.restype = ctypes.c_int
_libc.atoi.argtypes = [ctypes.c_char_p]

counts = st.one_of(
    st.integers(-(2**70), 2**70).map(lambda n: str(n).encode()),
    st.lists(st.sampled_from([b"0", b"1", b"2", b"9", b"-", b"+", b" ", b"\t", b"x", b"."]),
             max_size=8).map(b"".join),
)  # fmt: skip


@given(counts)
def test_atoi_is_libc_atoi(raw: bytes) -> None:
    assert commands._atoi(raw) == _libc.atoi(raw)


def test_store_key_first_by_specs_last_by_the_getkeys_procedure() -> None:
    spec = lookup(b"zunionstore")
    assert spec is not None
    assert spec.keys([b"zunionstore", b"d", b"2", b"a", b"b"]) == [b"d", b"a", b"b"]
    assert spec.keys([b"zunionstore", b"d", b"2abc", b"a", b"b"]) == [b"a", b"b", b"d"]
    assert spec.keys([b"zunionstore", b"d", b"4294967298", b"a", b"b"]) == [b"d", b"a", b"b"]
    assert spec.keys([b"zunionstore", b"d", b"3", b"a", b"b"]) == []
    assert spec.keys([b"zunionstore", b"d", b"0", b"a"]) == []
    zmpop = lookup(b"ZMPOP")
    assert zmpop is not None
    assert zmpop.keys([b"zmpop", b"2", b"a", b"b", b"min"]) == [b"a", b"b"]
