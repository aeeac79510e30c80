"""`Pairs`: flat in RESP2 (byte-identical to the flat list sent before it existed), an array
of 2-element arrays in RESP3; and it survives the cluster's reply codec (dedup table, reads
forwarded from followers) as itself, not as a flat list."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aspen.api.control import to_json
from aspen.cluster import replies
from aspen.resp.protocol import encode
from aspen.resp.values import Double, Map, Pairs, Set

leaf = st.one_of(
    st.binary(max_size=6),
    st.integers(-(2**63), 2**63 - 1),
    st.none(),
    st.builds(Double, st.floats(allow_nan=False)),
)
pairs = st.builds(Pairs, st.lists(st.tuples(leaf, leaf), max_size=5))


def test_pairs_wire_shapes() -> None:
    value = Pairs([(b"a", Double(1.5)), (b"b", None)])
    assert encode(value, 2) == b"*4\r\n$1\r\na\r\n$3\r\n1.5\r\n$1\r\nb\r\n$-1\r\n"
    assert encode(value, 3) == b"*2\r\n*2\r\n$1\r\na\r\n,1.5\r\n*2\r\n$1\r\nb\r\n_\r\n"
    assert encode(Pairs([]), 2) == encode(Pairs([]), 3) == b"*0\r\n"


@given(pairs)
def test_resp2_pairs_are_the_flat_array(value: Pairs) -> None:
    flat = [x for pair in value.items for x in pair]
    assert encode(value, 2) == encode(flat, 2)


@given(pairs)
def test_resp3_pairs_are_nested_arrays(value: Pairs) -> None:
    assert encode(value, 3) == encode([list(p) for p in value.items], 3)


@given(st.lists(pairs, max_size=3))
def test_pairs_inside_other_replies(values: list[Pairs]) -> None:
    """EXEC results and Map values nest Pairs; each level follows the connection's protocol."""
    for protocol in (2, 3):
        assert encode(values, protocol) == b"*%d\r\n" % len(values) + b"".join(
            encode(v, protocol) for v in values
        )


@given(st.one_of(pairs, st.lists(pairs, max_size=3), st.builds(Set, st.lists(leaf, max_size=3))))
def test_cluster_reply_codec_keeps_pairs(value: object) -> None:
    back = replies.decode(replies.encode(value))
    assert back == value
    assert type(back) is type(value)


def test_http_json_renders_pairs_like_a_map() -> None:
    value = Pairs([(b"a", Double(2.0)), (b"a", Double(2.0))])
    assert to_json(value) == [["a", 2.0], ["a", 2.0]]
    assert to_json(Map([(b"k", b"v")])) == [["k", "v"]]
