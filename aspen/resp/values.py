"""Reply values, independent of the wire protocol version.

The keyspace returns these; the codec turns them into RESP2 or RESP3 bytes per connection.
Plain Python values cover the common cases so the hot path allocates no wrappers:

    bytes      -> bulk string          int   -> integer
    None       -> null (RESP2: $-1)    list  -> array
    str        -> never used as a reply (ambiguous); use SimpleString or bytes
"""

from __future__ import annotations

import attrs


@attrs.frozen
class SimpleString:
    text: str


OK = SimpleString("OK")
QUEUED = SimpleString("QUEUED")
PONG = SimpleString("PONG")


@attrs.frozen
class Error:
    """An error reply; `message` includes the code, e.g. "ERR syntax error", "WRONGTYPE ..."."""

    message: str


@attrs.frozen
class NullArray:
    """RESP2's `*-1` (e.g. an aborted EXEC); RESP3 sends `_`."""


NULL_ARRAY = NullArray()


@attrs.frozen
class Double:
    """RESP3 double; RESP2 sends it as a bulk string."""

    value: float


@attrs.frozen
class HumanDouble:
    """A double already written in Redis's human form ("%.17Lf", trailing zeros dropped), as
    GEOPOS and WITHCOORD send coordinates: a bulk string in RESP2, a double in RESP3."""

    text: bytes


@attrs.frozen
class Boolean:
    """RESP3 boolean; RESP2 sends it as the integer 1 or 0."""

    value: bool


@attrs.frozen
class Map:
    """RESP3 map; RESP2 sends it as a flat array of key, value, key, value.

    `nested`: RESP2 sends it as an array of [key, value] arrays instead (XREAD's reply)."""

    items: list[tuple[object, object]]
    nested: bool = False


@attrs.frozen
class Pairs:
    """A list of 2-element items (member + score, field + value).

    RESP2 sends it flat (`*2n`: a, 1, b, 2), RESP3 as an array of n 2-element arrays, as Redis
    7 does for ZRANGE ... WITHSCORES, ZPOPMIN/ZPOPMAX with a count and HRANDFIELD ...
    WITHVALUES. Not a `Map`: the items are ordered and may repeat (HRANDFIELD -3).
    """

    items: list[tuple[object, object]]


@attrs.frozen
class Set:
    """RESP3 set; RESP2 sends it as an array."""

    items: list[object]


@attrs.frozen
class Verbatim:
    """RESP3 verbatim string (e.g. INFO, CLIENT LIST); RESP2 sends a bulk string."""

    text: bytes
    format: str = "txt"


@attrs.frozen
class Push:
    """RESP3 out-of-band push (pub/sub); RESP2 sends it as an array."""

    items: list[object]


@attrs.frozen
class ArrayHeader:
    """An array's header alone: EXEC under CLIENT REPLY OFF/SKIP announces its queued commands
    but writes fewer elements, as Redis does."""

    count: int


@attrs.frozen
class Replies:
    """Several replies to one command, written back to back (SUBSCRIBE a b answers twice)."""

    items: list[object]
