"""The mesh payload of a PUBSUB envelope: CBOR ``[version, [[channel, message], ...]]``.

One envelope may carry several messages (everything published on the node since the mesh
task last ran), in publish order.
"""

from __future__ import annotations

import cbor2

VERSION = 1


class PubSubDecodeError(ValueError):
    pass


def encode(messages: list[tuple[bytes, bytes]]) -> bytes:
    return cbor2.dumps([VERSION, [[ch, msg] for ch, msg in messages]])


def decode(data: bytes) -> list[tuple[bytes, bytes]]:
    """The messages in a payload; raises `PubSubDecodeError` on anything malformed."""
    try:
        value = cbor2.loads(data)
    except Exception as exc:  # cbor2 raises several types on hostile input
        raise PubSubDecodeError(f"not CBOR ({type(exc).__name__})") from None
    if not isinstance(value, list) or len(value) != 2 or value[0] != VERSION:
        raise PubSubDecodeError("not a version-1 pub/sub payload")
    if not isinstance(value[1], list):
        raise PubSubDecodeError("messages are not an array")
    out = []
    for item in value[1]:
        if (
            not isinstance(item, list)
            or len(item) != 2
            or type(item[0]) is not bytes
            or type(item[1]) is not bytes
        ):
            raise PubSubDecodeError("a message is not [channel, message] byte strings")
        out.append((item[0], item[1]))
    return out
