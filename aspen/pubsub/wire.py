"""The mesh payload of a PUBSUB envelope:
CBOR ``[version, incarnation, seq, [[channel, message], ...]]``; a shard message (SPUBLISH)
is ``[channel, message, 1]`` (a node older than sharded pub/sub refuses such an envelope).

One envelope may carry several messages (everything published on the node since the mesh
task last ran), in publish order. `incarnation` (the sender's start time in ns) and `seq`
(counting that incarnation's envelopes from 1) let a receiver drop duplicates and stragglers:
at most once and in order, whatever the transport does.
"""

from __future__ import annotations

import attrs
import cbor2

VERSION = 1


Item = tuple[bytes, bytes] | tuple[bytes, bytes, bool]
"""(channel, message), or (channel, message, True) for a shard message."""


class PubSubDecodeError(ValueError):
    pass


@attrs.frozen
class Batch:
    incarnation: int
    seq: int
    messages: list[Item]


def encode(batch: Batch) -> bytes:
    items = [[m[0], m[1], 1] if len(m) == 3 else [m[0], m[1]] for m in batch.messages]
    return cbor2.dumps([VERSION, batch.incarnation, batch.seq, items])


def decode(data: bytes) -> Batch:
    """The batch in a payload; raises `PubSubDecodeError` on anything malformed."""
    try:
        value = cbor2.loads(data)
    except Exception as exc:  # cbor2 raises several types on hostile input
        raise PubSubDecodeError(f"not CBOR ({type(exc).__name__})") from None
    if not isinstance(value, list) or len(value) != 4 or value[0] != VERSION:
        raise PubSubDecodeError("not a version-1 pub/sub payload")
    _, incarnation, seq, items = value
    if type(incarnation) is not int or type(seq) is not int or not isinstance(items, list):
        raise PubSubDecodeError("bad header")
    out: list[Item] = []
    for item in items:
        if (
            not isinstance(item, list)
            or len(item) not in (2, 3)
            or type(item[0]) is not bytes
            or type(item[1]) is not bytes
            or (len(item) == 3 and item[2] != 1)
        ):
            raise PubSubDecodeError("a message is not [channel, message] byte strings")
        out.append((item[0], item[1], True) if len(item) == 3 else (item[0], item[1]))
    return Batch(incarnation, seq, out)
