"""GEOADD, GEOPOS, GEODIST, GEOHASH, GEOSEARCH[STORE] and GEORADIUS[BYMEMBER][_RO] against
redis-server 7.0.15, in RESP2 and RESP3: scores (the 52-bit geohash), coordinates and
distances as text, search results including their order when no sort is asked (the order of
Redis's cell walk), the stored results, and the errors in Redis's order."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from data_oracle import Pair, redis_pair
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.hypothesis_budget import scaled_examples

pytestmark = pytest.mark.differential

KEYS = [b"g1", b"g2"]


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    yield from redis_pair()


def num(x: float) -> bytes:
    return repr(x).encode()


lon = st.one_of(
    st.floats(-180, 180, allow_nan=False),
    st.sampled_from([-180.0, 180.0, 0.0, 179.9999, -179.9999, 13.361389, 15.087269]),
)
lat = st.one_of(
    st.floats(-85.05112878, 85.05112878, allow_nan=False),
    st.sampled_from([85.05112878, -85.05112878, 0.0, 38.115556, 37.502669, 70.0, -81.0]),
)
bad_coord = st.sampled_from([b"181", b"-85.06", b"x", b"nan", b"inf", b"1e400", b""])
member = st.sampled_from([b"m%d" % i for i in range(40)] + [b"12", b"-3"])
key = st.sampled_from([*KEYS, b"nokey", b"str"])
unit = st.sampled_from([b"m", b"km", b"KM", b"ft", b"mi", b"Mi", b"yd"])
radius = st.one_of(
    st.floats(0, 2_000, allow_nan=False).map(num),
    st.sampled_from([b"0", b"100000", b"5000000", b"20000000", b"-1", b"x", b"1e400"]),
)
count = st.one_of(st.integers(1, 8).map(lambda n: str(n).encode()), st.sampled_from([b"0", b"x"]))


def words(*ws: bytes) -> st.SearchStrategy[list[bytes]]:
    return st.just(list(ws))


def flat(*parts: st.SearchStrategy[list[bytes]]) -> st.SearchStrategy[list[bytes]]:
    return st.tuples(*parts).map(lambda xs: [a for x in xs for a in x])


def one(s: st.SearchStrategy[bytes]) -> st.SearchStrategy[list[bytes]]:
    return s.map(lambda x: [x])


coord_pair = st.one_of(
    st.tuples(lon, lat).map(lambda t: [num(t[0]), num(t[1])]),
    st.tuples(bad_coord, bad_coord).map(list),
)
point = flat(coord_pair, one(member))
options = st.lists(
    st.one_of(
        st.sampled_from([[b"WITHDIST"], [b"withhash"], [b"WITHCOORD"], [b"ASC"], [b"desc"],
                         [b"ANY"], [b"bogus"]]),
        flat(words(b"COUNT"), one(count)),
    ),
    max_size=4,
).map(lambda xs: [a for x in xs for a in x])
store_opts = st.sampled_from([[], [], [b"STORE", b"dst"], [b"STOREDIST", b"dst"]])
centre = st.one_of(
    flat(words(b"FROMMEMBER"), one(member)),
    flat(words(b"FROMLONLAT"), coord_pair),
)
area = st.one_of(
    flat(words(b"BYRADIUS"), one(radius), one(unit)),
    flat(words(b"BYBOX"), one(radius), one(radius), one(unit)),
)

command = st.one_of(
    flat(words(b"GEOADD"), one(key), st.sampled_from([[], [b"NX"], [b"XX"], [b"CH"],
                                                       [b"XX", b"CH"], [b"NX", b"XX"]]),
         st.lists(point, min_size=1, max_size=4).map(lambda ps: [a for p in ps for a in p])),
    flat(words(b"GEOPOS"), one(key), st.lists(member, max_size=3)),
    flat(words(b"GEODIST"), one(key), one(member), one(member),
         st.sampled_from([[], [b"km"], [b"mi"], [b"parsec"], [b"m", b"x"]])),
    flat(words(b"GEOHASH"), one(key), st.lists(member, max_size=3)),
    flat(words(b"GEOSEARCH"), one(key), centre, area, options),
    flat(words(b"GEOSEARCH"), one(key), area, centre, options),
    flat(words(b"GEOSEARCHSTORE"), words(b"dst"), one(key), centre, area,
         st.sampled_from([[], [b"STOREDIST"]]), options),
    flat(words(b"GEORADIUS"), one(key), coord_pair, one(radius), one(unit), options,
         store_opts),
    flat(words(b"GEORADIUS_RO"), one(key), coord_pair, one(radius), one(unit), options),
    flat(words(b"GEORADIUSBYMEMBER"), one(key), one(member), one(radius), one(unit), options,
         store_opts),
    flat(words(b"GEORADIUSBYMEMBER_RO"), one(key), one(member), one(radius), one(unit),
         options),
    flat(words(b"ZRANGE"), words(b"dst"), words(b"0", b"-1", b"WITHSCORES")),
)


@settings(
    max_examples=scaled_examples(120),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    points=st.lists(st.tuples(lon, lat), min_size=1, max_size=40),
    steps=st.lists(st.tuples(st.sampled_from([2, 3]), command), max_size=20),
)
def test_geo_commands_match_redis_server(
    pair: Pair, points: list[tuple[float, float]], steps: list[tuple[int, list[bytes]]]
) -> None:
    pair.reset()
    pair.check([b"SET", b"str", b"x"])
    load = [b"GEOADD", b"g1"]
    for i, (x, y) in enumerate(points):
        load += [num(x), num(y), b"m%d" % i]
    pair.check(load)
    pair.check([b"ZADD", b"g2", b"0", b"m1", b"-5", b"m2", b"4503599627370495", b"m3",
                b"1e30", b"m4", b"inf", b"m5"])
    for protocol, argv in steps:
        pair.check(argv, protocol)
    pair.check([b"ZRANGE", b"g1", b"0", b"-1", b"WITHSCORES"])


def test_dense_cluster_searches_match_redis_server(pair: Pair) -> None:
    """Many points around a few centres: the cell walk with COUNT ANY stopping early, and
    the unsorted order."""
    pair.reset()
    load = [b"GEOADD", b"pts"]
    for i in range(600):
        x = -0.5 + (i * 7919 % 1000) / 1000.0
        y = 51.0 + (i * 104729 % 1000) / 1000.0
        load += [num(x), num(y), b"p%d" % i]
    pair.check(load)
    for r in (b"1", b"5", b"20", b"60", b"500", b"3000"):
        for proto in (2, 3):
            pair.check([b"GEOSEARCH", b"pts", b"FROMLONLAT", b"0", b"51.5", b"BYRADIUS", r,
                        b"km"], proto)
            pair.check([b"GEOSEARCH", b"pts", b"FROMLONLAT", b"0", b"51.5", b"BYRADIUS", r,
                        b"km", b"COUNT", b"7", b"ANY", b"WITHDIST"], proto)
            pair.check([b"GEOSEARCH", b"pts", b"FROMMEMBER", b"p3", b"BYBOX", r, r, b"km",
                        b"DESC", b"COUNT", b"5", b"WITHCOORD", b"WITHHASH"], proto)
        pair.check([b"GEORADIUS", b"pts", b"0.1", b"51.2", r, b"km", b"STOREDIST", b"d"])
        pair.check([b"ZRANGE", b"d", b"0", b"-1", b"WITHSCORES"])
