"""Geo commands on sorted sets: GEOADD, GEOPOS, GEODIST, GEOHASH, GEOSEARCH[STORE] and
GEORADIUS[BYMEMBER][_RO], as Redis 7.0 answers them.

A point is a sorted-set member whose score is Redis's 52-bit geohash: latitude (clamped to the
Web Mercator range +-85.05112878) and longitude scaled to 26-bit integers and bit-interleaved
(latitude in the even bits). A search walks the same geohash cells Redis walks (the centre cell
at the estimated precision and its eight neighbours, minus those outside the bounding box), in
Redis's order, each as a score range of the sorted set; members are then filtered by the exact
haversine distance Redis computes. So the members found, their order when no sort is asked,
and every distance agree with redis-server bit for bit (same libm).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import TYPE_CHECKING

import attrs

from aspen.kv.errors import SYNTAX, WRONGTYPE, CommandError
from aspen.kv.numbers import format_long_double, parse_int
from aspen.kv.sortedset import by_score
from aspen.kv.typed import double_arg, get_read, replace
from aspen.kv.zsets import ZSet, zadd
from aspen.resp.values import NULL_ARRAY, HumanDouble

if TYPE_CHECKING:
    from aspen.kv.keyspace import Keyspace

Argv = Sequence[bytes]

STEP_MAX = 26
LAT_MIN, LAT_MAX = -85.05112878, 85.05112878
LON_MIN, LON_MAX = -180.0, 180.0
EARTH_RADIUS = 6372797.560856
MERCATOR_MAX = 20037726.37
_D_R = math.pi / 180.0
_M64 = (1 << 64) - 1
_UNITS = {b"m": 1.0, b"km": 1000.0, b"ft": 0.3048, b"mi": 1609.34}
_BAD_UNIT = "ERR unsupported unit provided. please use M, KM, FT, MI"
_NO_MEMBER = "ERR could not decode requested zset member"


# ------------------------------------------------------------------ geohash


def _spread(v: int) -> int:
    """The 32 bits of `v` moved to the even bit positions of a 64-bit word."""
    v &= 0xFFFFFFFF
    v = (v | (v << 16)) & 0x0000FFFF0000FFFF
    v = (v | (v << 8)) & 0x00FF00FF00FF00FF
    v = (v | (v << 4)) & 0x0F0F0F0F0F0F0F0F
    v = (v | (v << 2)) & 0x3333333333333333
    return (v | (v << 1)) & 0x5555555555555555


def _squash(v: int) -> int:
    """Inverse of `_spread`: the even bits of `v` packed into 32 bits."""
    v &= 0x5555555555555555
    v = (v | (v >> 1)) & 0x3333333333333333
    v = (v | (v >> 2)) & 0x0F0F0F0F0F0F0F0F
    v = (v | (v >> 4)) & 0x00FF00FF00FF00FF
    v = (v | (v >> 8)) & 0x0000FFFF0000FFFF
    return (v | (v >> 16)) & 0x00000000FFFFFFFF


@attrs.frozen
class Cell:
    bits: int
    step: int


def encode(
    lon: float, lat: float, step: int,
    lon_range: tuple[float, float] = (LON_MIN, LON_MAX),
    lat_range: tuple[float, float] = (LAT_MIN, LAT_MAX),
) -> Cell:
    lat_off = (lat - lat_range[0]) / (lat_range[1] - lat_range[0]) * float(1 << step)
    lon_off = (lon - lon_range[0]) / (lon_range[1] - lon_range[0]) * float(1 << step)
    return Cell(_spread(int(lat_off)) | (_spread(int(lon_off)) << 1), step)


@attrs.frozen
class Area:
    lat_min: float
    lat_max: float
    lon_min: float
    lon_max: float


def decode(cell: Cell) -> Area:
    lat_i = _squash(cell.bits)
    lon_i = _squash(cell.bits >> 1)
    div = float(1 << cell.step)
    lat_scale = LAT_MAX - LAT_MIN
    lon_scale = LON_MAX - LON_MIN
    return Area(
        LAT_MIN + (lat_i * 1.0 / div) * lat_scale,
        LAT_MIN + ((lat_i + 1) * 1.0 / div) * lat_scale,
        LON_MIN + (lon_i * 1.0 / div) * lon_scale,
        LON_MIN + ((lon_i + 1) * 1.0 / div) * lon_scale,
    )


def score_bits(score: float) -> int:
    """C's `(uint64_t) score` for the scores geo commands decode (x86-64 conversions)."""
    if score != score or math.isinf(score):
        return 0
    if score >= 2.0**64 or score <= -(2.0**63):
        return 0 if score > 0 else 1 << 63
    return int(score) & _M64


def point_of(score: float) -> tuple[float, float]:
    """(longitude, latitude) of a geo score: the centre of its step-26 cell, clamped."""
    area = decode(Cell(score_bits(score), STEP_MAX))
    lon = (area.lon_min + area.lon_max) / 2
    lon = min(max(lon, LON_MIN), LON_MAX)
    lat = (area.lat_min + area.lat_max) / 2
    lat = min(max(lat, LAT_MIN), LAT_MAX)
    return lon, lat


def geo_score(lon: float, lat: float) -> int:
    return encode(lon, lat, STEP_MAX).bits


def _move_x(cell: Cell, d: int) -> Cell:
    x = cell.bits & 0xAAAAAAAAAAAAAAAA
    y = cell.bits & 0x5555555555555555
    zz = 0x5555555555555555 >> (64 - cell.step * 2)
    x = (x + (zz + 1) if d > 0 else (x | zz) - (zz + 1)) & _M64
    x &= 0xAAAAAAAAAAAAAAAA >> (64 - cell.step * 2)
    return Cell(x | y, cell.step)


def _move_y(cell: Cell, d: int) -> Cell:
    x = cell.bits & 0xAAAAAAAAAAAAAAAA
    y = cell.bits & 0x5555555555555555
    zz = 0xAAAAAAAAAAAAAAAA >> (64 - cell.step * 2)
    y = (y + (zz + 1) if d > 0 else (y | zz) - (zz + 1)) & _M64
    y &= 0x5555555555555555 >> (64 - cell.step * 2)
    return Cell(x | y, cell.step)


def _neighbours(c: Cell) -> dict[str, Cell]:
    return {
        "north": _move_y(c, 1),
        "south": _move_y(c, -1),
        "east": _move_x(c, 1),
        "west": _move_x(c, -1),
        "north_east": _move_y(_move_x(c, 1), 1),
        "north_west": _move_y(_move_x(c, -1), 1),
        "south_east": _move_y(_move_x(c, 1), -1),
        "south_west": _move_y(_move_x(c, -1), -1),
    }


# ------------------------------------------------------------------ distances


def _rad(deg: float) -> float:
    return deg * _D_R


def lat_distance(lat1: float, lat2: float) -> float:
    return EARTH_RADIUS * abs(_rad(lat2) - _rad(lat1))


def distance(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Haversine distance in meters, computed as Redis computes it."""
    lon1r, lon2r = _rad(lon1), _rad(lon2)
    v = math.sin((lon2r - lon1r) / 2)
    if v == 0.0:
        return lat_distance(lat1, lat2)
    lat1r, lat2r = _rad(lat1), _rad(lat2)
    u = math.sin((lat2r - lat1r) / 2)
    a = u * u + math.cos(lat1r) * math.cos(lat2r) * v * v
    return 2.0 * EARTH_RADIUS * math.asin(math.sqrt(a))


# ------------------------------------------------------------------ search shapes


@attrs.define
class Shape:
    lon: float = 0.0
    lat: float = 0.0
    circle: bool = True
    radius: float = 0.0
    width: float = 0.0
    height: float = 0.0
    conversion: float = 1.0

    def bounds(self) -> tuple[float, float, float, float]:
        """(min lon, min lat, max lon, max lat) of the search area."""
        height = self.conversion * (self.radius if self.circle else self.height / 2)
        width = self.conversion * (self.radius if self.circle else self.width / 2)
        lat_delta = height / EARTH_RADIUS / _D_R
        top = width / EARTH_RADIUS / math.cos(_rad(self.lat + lat_delta)) / _D_R
        bottom = width / EARTH_RADIUS / math.cos(_rad(self.lat - lat_delta)) / _D_R
        south = self.lat < 0
        return (
            self.lon - bottom if south else self.lon - top,
            self.lat - lat_delta,
            self.lon + bottom if south else self.lon + top,
            self.lat + lat_delta,
        )

    def contains(self, lon: float, lat: float) -> float | None:
        """The distance from the centre in meters if (lon, lat) is inside, else None."""
        if self.circle:
            d = distance(self.lon, self.lat, lon, lat)
            return None if d > self.radius * self.conversion else d
        width_m, height_m = self.width * self.conversion, self.height * self.conversion
        if lat_distance(lat, self.lat) > height_m / 2:
            return None
        if distance(lon, lat, self.lon, lat) > width_m / 2:
            return None
        return distance(self.lon, self.lat, lon, lat)


def _steps_for(range_m: float, lat: float) -> int:
    if range_m == 0:
        return 26
    step = 1
    while range_m < MERCATOR_MAX:
        range_m *= 2
        step += 1
    step -= 2
    if lat > 66 or lat < -66:
        step -= 1
        if lat > 80 or lat < -80:
            step -= 1
    return max(1, min(26, step))


def search_cells(shape: Shape) -> list[Cell | None]:
    """The centre cell and its neighbours in Redis's order (None: excluded)."""
    min_lon, min_lat, max_lon, max_lat = shape.bounds()
    if shape.circle:
        radius_m = shape.radius
    else:
        radius_m = math.sqrt((shape.width / 2) * (shape.width / 2)
                             + (shape.height / 2) * (shape.height / 2))
    radius_m *= shape.conversion
    steps = _steps_for(radius_m, shape.lat)
    centre = encode(shape.lon, shape.lat, steps)
    near = _neighbours(centre)
    decrease = (
        decode(near["north"]).lat_max < max_lat
        or decode(near["south"]).lat_min > min_lat
        or decode(near["east"]).lon_max < max_lon
        or decode(near["west"]).lon_min > min_lon
    )
    if steps > 1 and decrease:
        steps -= 1
        centre = encode(shape.lon, shape.lat, steps)
        near = _neighbours(centre)
    area = decode(centre)
    dropped: set[str] = set()
    if steps >= 2:
        if area.lat_min < min_lat:
            dropped |= {"south", "south_west", "south_east"}
        if area.lat_max > max_lat:
            dropped |= {"north", "north_east", "north_west"}
        if area.lon_min < min_lon:
            dropped |= {"west", "south_west", "north_west"}
        if area.lon_max > max_lon:
            dropped |= {"east", "south_east", "north_east"}
    order = ["north", "south", "east", "west", "north_east", "north_west", "south_east",
             "south_west"]
    return [centre] + [None if name in dropped else near[name] for name in order]


@attrs.frozen
class Found:
    member: bytes
    score: float
    dist: float
    lon: float
    lat: float


def _members_in_cell(z: ZSet, cell: Cell, shape: Shape, out: list[Found], limit: int) -> None:
    shift = 52 - cell.step * 2
    lo = float(cell.bits << shift)
    hi = float((cell.bits + 1) << shift)
    order = z.order
    start = order.bisect(lo, False, by_score)
    stop = order.bisect(hi, False, by_score)
    for score, member in order.islice(start, stop):
        lon, lat = point_of(score)
        d = shape.contains(lon, lat)
        if d is not None:
            out.append(Found(member, score, d, lon, lat))
        if out and limit and len(out) >= limit:
            break


def search(z: ZSet, shape: Shape, limit: int) -> list[Found]:
    """Members inside `shape`, in the order Redis finds them (stops at `limit` if not 0)."""
    out: list[Found] = []
    cells = search_cells(shape)
    last = 0  # as in Redis, 0 also after the centre: a neighbour equal to it is not skipped
    for i, cell in enumerate(cells):
        if cell is None:
            continue
        if last and cell == cells[last]:
            continue  # huge radii: adjacent neighbours can be the same cell
        if out and limit and len(out) >= limit:
            break
        _members_in_cell(z, cell, shape, out, limit)
        last = i
    return out


# ------------------------------------------------------------------ argument parsing


def _coords(raw_lon: bytes, raw_lat: bytes) -> tuple[float, float]:
    lon, lat = double_arg(raw_lon), double_arg(raw_lat)
    if lon < LON_MIN or lon > LON_MAX or lat < LAT_MIN or lat > LAT_MAX:
        raise CommandError(f"ERR invalid longitude,latitude pair {lon:f},{lat:f}")
    return lon, lat


def _unit(raw: bytes) -> float:
    unit = _UNITS.get(raw.lower())
    if unit is None:
        raise CommandError(_BAD_UNIT)
    return unit


def _distance_arg(shape: Shape, raw: bytes, unit: bytes) -> None:
    d = double_arg(raw, "ERR need numeric radius")
    if d < 0:
        raise CommandError("ERR radius cannot be negative")
    shape.radius = d
    shape.conversion = _unit(unit)
    shape.circle = True


def _box_arg(shape: Shape, raw_w: bytes, raw_h: bytes, unit: bytes) -> None:
    w = double_arg(raw_w, "ERR need numeric width")
    h = double_arg(raw_h, "ERR need numeric height")
    if h < 0 or w < 0:
        raise CommandError("ERR height or width cannot be negative")
    shape.width, shape.height = w, h
    shape.conversion = _unit(unit)
    shape.circle = False


def fixed4(value: float) -> bytes:
    """Redis's fixedpoint_d2string(d, 4): llrint(d * 10000) printed with 4 decimals."""
    if value == 0:
        return b"0.0000"
    scaled = round(value * 10000.0)
    sign = "-" if scaled < 0 else ""
    scaled = abs(scaled)
    return f"{sign}{scaled // 10000}.{scaled % 10000:04d}".encode()


def human(value: float) -> HumanDouble:
    return HumanDouble(format_long_double(Fraction(value)))


# ------------------------------------------------------------------ commands


def geoadd(ks: Keyspace, argv: Argv, now: int) -> object:
    at = 2
    nx = xx = False
    while at < len(argv):
        opt = argv[at].lower()
        if opt == b"nx":
            nx = True
        elif opt == b"xx":
            xx = True
        elif opt != b"ch":
            break
        at += 1
    if (len(argv) - at) % 3 or (nx and xx):
        raise CommandError(SYNTAX)
    zargv = [b"zadd", *argv[1:at]]
    for i in range(at, len(argv), 3):
        lon, lat = _coords(argv[i], argv[i + 1])
        zargv += [str(geo_score(lon, lat)).encode(), argv[i + 2]]
    return zadd(ks, zargv, now)


def geopos(ks: Keyspace, argv: Argv, now: int) -> object:
    z = get_read(ks, argv[1], now, ZSet)
    out: list[object] = []
    for member in argv[2:]:
        score = None if z is None else z.scores.get(member)
        if score is None:
            out.append(NULL_ARRAY)
        else:
            lon, lat = point_of(score)
            out.append([human(lon), human(lat)])
    return out


def geodist(ks: Keyspace, argv: Argv, now: int) -> object:
    to_meter = 1.0
    if len(argv) == 5:
        to_meter = _unit(argv[4])
    elif len(argv) > 5:
        raise CommandError(SYNTAX)
    z = get_read(ks, argv[1], now, ZSet)
    if z is None:
        return None
    s1, s2 = z.scores.get(argv[2]), z.scores.get(argv[3])
    if s1 is None or s2 is None:
        return None
    (lon1, lat1), (lon2, lat2) = point_of(s1), point_of(s2)
    return fixed4(distance(lon1, lat1, lon2, lat2) / to_meter)


_ALPHABET = b"0123456789bcdefghjkmnpqrstuvwxyz"


def geohash(ks: Keyspace, argv: Argv, now: int) -> object:
    z = get_read(ks, argv[1], now, ZSet)
    out: list[object] = []
    for member in argv[2:]:
        score = None if z is None else z.scores.get(member)
        if score is None:
            out.append(None)
            continue
        lon, lat = point_of(score)
        bits = encode(lon, lat, 26, (-180.0, 180.0), (-90.0, 90.0)).bits
        chars = [_ALPHABET[(bits >> (52 - (i + 1) * 5)) & 0x1F] for i in range(10)]
        out.append(bytes(chars) + b"0")
    return out


_COORDS, _MEMBER, _NOSTORE, _SEARCH, _SEARCHSTORE = 1, 2, 4, 8, 16


def _georadius(ks: Keyspace, argv: Argv, now: int, src: int, flags: int) -> object:
    value = ks.get_read(argv[src], now)
    if value is not None and type(value) is not ZSet:
        raise CommandError(WRONGTYPE)
    z: ZSet | None = value
    shape = Shape()
    store_key: bytes | None = None
    store_dist = False
    if flags & _COORDS:
        base = 6
        shape.lon, shape.lat = _coords(argv[2], argv[3])
        _distance_arg(shape, argv[4], argv[5])
    elif flags & _MEMBER and z is None:
        base = 5
    elif flags & _MEMBER:
        base = 5
        score = z.scores.get(argv[2]) if z is not None else None
        if score is None:
            raise CommandError(_NO_MEMBER)
        shape.lon, shape.lat = point_of(score)
        _distance_arg(shape, argv[3], argv[4])
    else:
        base = 2
        if flags & _SEARCHSTORE:
            base = 3
            store_key = argv[1]
    with_dist = with_hash = with_coord = False
    from_member = from_loc = by_radius = by_box = False
    sort = 0  # 0 none, 1 asc, 2 desc
    any_ = False
    count = 0
    searching = bool(flags & _SEARCH)
    i, rem = 0, len(argv) - base
    while i < rem:
        at = base + i
        arg = argv[at].lower()
        if arg == b"withdist":
            with_dist = True
        elif arg == b"withhash":
            with_hash = True
        elif arg == b"withcoord":
            with_coord = True
        elif arg == b"any":
            any_ = True
        elif arg == b"asc":
            sort = 1
        elif arg == b"desc":
            sort = 2
        elif arg == b"count" and i + 1 < rem:
            n = parse_int(argv[at + 1])
            if n is None:
                raise CommandError("ERR value is not an integer or out of range")
            if n <= 0:
                raise CommandError("ERR COUNT must be > 0")
            count = n
            i += 1
        elif arg in (b"store", b"storedist") and i + 1 < rem and not flags & _NOSTORE \
                and not searching:
            store_key = argv[at + 1]
            store_dist = arg == b"storedist"
            i += 1
        elif arg == b"storedist" and searching and flags & _SEARCHSTORE:
            store_dist = True
        elif arg == b"frommember" and i + 1 < rem and searching and not from_loc:
            if z is not None:
                score = z.scores.get(argv[at + 1])
                if score is None:
                    raise CommandError(_NO_MEMBER)
                shape.lon, shape.lat = point_of(score)
            from_member = True
            i += 1
        elif arg == b"fromlonlat" and i + 2 < rem and searching and not from_member:
            shape.lon, shape.lat = _coords(argv[at + 1], argv[at + 2])
            from_loc = True
            i += 2
        elif arg == b"byradius" and i + 2 < rem and searching and not by_box:
            _distance_arg(shape, argv[at + 1], argv[at + 2])
            by_radius = True
            i += 2
        elif arg == b"bybox" and i + 3 < rem and searching and not by_radius:
            _box_arg(shape, argv[at + 1], argv[at + 2], argv[at + 3])
            by_box = True
            i += 3
        else:
            raise CommandError(SYNTAX)
        i += 1
    if store_key is not None and (with_dist or with_hash or with_coord):
        what = "GEOSEARCHSTORE" if flags & _SEARCHSTORE else "STORE option in GEORADIUS"
        raise CommandError(
            f"ERR {what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        )
    name = argv[0].decode("utf-8", "replace")
    if searching and not (from_member or from_loc):
        raise CommandError(
            f"ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}"
        )
    if searching and not (by_radius or by_box):
        raise CommandError(f"ERR exactly one of BYRADIUS and BYBOX can be specified for {name}")
    if any_ and not count:
        raise CommandError("ERR the ANY argument requires COUNT argument")
    if z is None:
        if store_key is not None:
            ks.delete(store_key, now)
            return 0
        return []
    if count and not sort and not any_:
        sort = 1
    found = search(z, shape, count if any_ else 0)
    if not found and store_key is None:
        return []
    if sort:
        found.sort(key=lambda f: f.dist, reverse=sort == 2)
    if count:
        found = found[:count]
    if store_key is None:
        out: list[object] = []
        for f in found:
            dist = f.dist / shape.conversion
            if not (with_dist or with_hash or with_coord):
                out.append(f.member)
                continue
            item: list[object] = [f.member]
            if with_dist:
                item.append(fixed4(dist))
            if with_hash:
                item.append(int(f.score))
            if with_coord:
                item.append([human(f.lon), human(f.lat)])
            out.append(item)
        return out
    result = ZSet()
    for f in found:
        result.set(f.member, f.dist / shape.conversion if store_dist else f.score)
    replace(ks, store_key, result, now)
    return len(found)


def georadius(ks: Keyspace, argv: Argv, now: int) -> object:
    return _georadius(ks, argv, now, 1, _COORDS)


def georadiusbymember(ks: Keyspace, argv: Argv, now: int) -> object:
    return _georadius(ks, argv, now, 1, _MEMBER)


def georadius_ro(ks: Keyspace, argv: Argv, now: int) -> object:
    return _georadius(ks, argv, now, 1, _COORDS | _NOSTORE)


def georadiusbymember_ro(ks: Keyspace, argv: Argv, now: int) -> object:
    return _georadius(ks, argv, now, 1, _MEMBER | _NOSTORE)


def geosearch(ks: Keyspace, argv: Argv, now: int) -> object:
    return _georadius(ks, argv, now, 1, _SEARCH)


def geosearchstore(ks: Keyspace, argv: Argv, now: int) -> object:
    return _georadius(ks, argv, now, 2, _SEARCH | _SEARCHSTORE)
