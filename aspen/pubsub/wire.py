"""The mesh payload of a PUBSUB envelope:
CBOR ``[version, incarnation, seq, [[channel, message], ...]]``.

One envelope may carry several messages (everything published on the node since the mesh
task last ran), in publish order. `incarnation` (the sender's start time in ns) and `seq`
(counting that incarnation's envelopes from 1) let a receiver drop duplicates and stragglers:
at most once and in order, whatever the transport does.
"""

from __future__ import annotations

import attrs
import cbor2

VERSION = 1


class PubSubDecodeError(ValueError):
    pass


@attrs.frozen
class Batch:
    incarnation: int
    seq: int
    messages: list[tuple[bytes, bytes]]


def encode(batch: Batch) -> bytes:
    return cbor2.dumps(
        [VERSION, batch.incarnation, batch.seq, [[ch, msg] for ch, msg in batch.messages]]
    )


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
    out = []
    for item in items:
        if (
            not isinstance(item, list)
            or len(item) != 2
            or type(item[0]) is not bytes
            or type(item[1]) is not bytes
        ):
            raise PubSubDecodeError("a message is not [channel, message] byte strings")
        out.append((item[0], item[1]))
    return Batch(incarnation, seq, out)
