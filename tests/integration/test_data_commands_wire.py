"""The data commands of issue 16 over the wire: a real `aspen node` (every write through its
Raft log, PFCOUNT included, reads through the node's read path, OBJECT/MEMORY subcommands
routed by the table) next to redis-server 7.0.15, in RESP2 and RESP3, inside MULTI too. The
generated sequences run in-process (tests/unit/kv/test_*_differential.py); this checks the
path through the node once per family. (OBJECT ENCODING of a string SETBIT wrote is "raw"
in Redis and "embstr" here: a documented difference, docs/compatibility.md.)"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "kv"))
from test_differential_wire import aspen_port, redis_port, replay

pytestmark = [pytest.mark.slow, pytest.mark.differential]
__all__ = ["aspen_port", "redis_port"]

SCRIPT = """\
setbit b 7 1|setbit b 100 1|getbit b 100|bitcount b|bitcount b 0 -1 bit|bitpos b 1 2
bitop not nb b|get nb|bitfield bf set u8 0 200 incrby u8 0 100 overflow sat incrby i8 #1 300
bitfield_ro bf get u8 0|set s1 ohmytext|set s2 mynewtext|lcs s1 s2 idx withmatchlen|substr s1 1 3
pfadd h a b c d|pfcount h|get h|pfadd h2 c d e|pfcount h h2|pfmerge h3 h h2|get h3|pfcount h3
geoadd g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania|geopos g Palermo nope
geodist g Palermo Catania km|geohash g Palermo Catania
geosearch g fromlonlat 15 37 byradius 200 km asc withcoord withdist withhash
geosearchstore gs g frommember Palermo bybox 400 400 km storedist|zrange gs 0 -1 withscores
georadius g 15 37 200 km store gr|zrange gr 0 -1 withscores|georadiusbymember_ro g Palermo 100 km
rpush l 3 1 2|sort l|sort l desc limit 0 2|sort l by nosort get #|sort l store sl|lrange sl 0 -1
sort_ro l alpha|zadd z 1 a 2 b|bzmpop 0.01 2 nope z max count 5|bzmpop 0.01 1 nope min
object encoding l|object encoding s1|object encoding g|object refcount s1|object freq s1
object help|memory usage s1
dump s1|multi|pfadd h x y|pfcount h|geodist g Palermo Catania|sort l|exec"""


def _steps() -> list[tuple[int, list[bytes]]]:
    return [(0, line.encode().split(b" ")) for row in SCRIPT.splitlines()
            for line in row.split("|")]


@pytest.mark.parametrize("protocol", [2, 3])
def test_data_commands_through_a_node_match_redis_server(
    redis_port: int, aspen_port: int, protocol: int
) -> None:
    replay((redis_port, aspen_port), _steps(), protocol=protocol)
