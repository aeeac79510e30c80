"""The envelope every transport puts around a payload.

Wire forms (CBOR arrays):

* version 1: ``[1, kind, cluster, sender, payload]`` — every release speaks it;
* version 2: ``[2, kind, cluster, sender, payload, flags]`` — ``flags`` bit 0: the payload is
  zlib-compressed. Sent only while every member announces protocol 2 (`transports.protocol`).

Decoding tolerates what a newer release may add: elements after the known ones are ignored,
and a kind this release does not know is reported as ``unknown_kind`` (the caller drops and
counts it quietly: a newer peer's new message, not an attack). Anything else that is not
exactly one of these shapes raises `EnvelopeError` with the `DropReason` to count, so a
transport can drop it and carry on.
"""

from __future__ import annotations

import enum
import zlib

import attrs
import cbor2

from transports.stats import DropReason

VERSION = 1
"""The envelope version every release reads; a sender uses it unless the cluster runs at 2."""
MAX_VERSION = 2
FLAG_ZLIB = 1


class MessageKind(enum.IntEnum):
    """What the payload is: Raft traffic, forwarded client traffic, or pub/sub messages."""

    RAFT = 0
    CLIENT_REQUEST = 1  # a follower forwards a client's request to the leader
    CLIENT_REPLY = 2  # the leader's reply, naming the request id inside the payload
    PUBSUB = 3  # PUBLISHed messages for the receiver's local subscribers (aspen.pubsub.wire)
    HELLO = 4  # a peer's protocol version and features (protocol 2; transports.protocol)


@attrs.frozen
class Envelope:
    kind: MessageKind
    cluster_id: str
    sender: int
    payload: bytes


class EnvelopeError(ValueError):
    def __init__(self, reason: DropReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


def encode(envelope: Envelope) -> bytes:
    """Version 1: what every release reads."""
    return cbor2.dumps(
        [VERSION, int(envelope.kind), envelope.cluster_id, envelope.sender, envelope.payload]
    )


def encode_compressed(envelope: Envelope) -> bytes:
    """Version 2 with a zlib payload; only for peers that all announced protocol 2."""
    return cbor2.dumps(
        [
            2,
            int(envelope.kind),
            envelope.cluster_id,
            envelope.sender,
            zlib.compress(envelope.payload, 1),
            FLAG_ZLIB,
        ]
    )


def decode(data: bytes, max_payload: int = 1 << 62) -> Envelope:
    """Parse and shape-check one envelope; raises `EnvelopeError` on anything unexpected.

    ``max_payload`` bounds a decompressed payload (a small compressed frame must not be able
    to expand into gigabytes)."""
    try:
        value = cbor2.loads(data)
    except Exception as exc:  # cbor2 raises several types on hostile input; all mean "garbage"
        raise EnvelopeError(DropReason.MALFORMED, f"not CBOR ({type(exc).__name__})") from None
    if not isinstance(value, list) or len(value) < 5:
        raise EnvelopeError(DropReason.MALFORMED, "not an array of at least 5 elements")
    version, kind, cluster_id, sender, payload = value[:5]
    if type(version) is not int:
        raise EnvelopeError(DropReason.MALFORMED, "version is not an integer")
    if not 1 <= version <= MAX_VERSION:
        raise EnvelopeError(DropReason.BAD_VERSION, f"version {version}")
    flags = 0
    if version >= 2:
        if len(value) < 6 or type(value[5]) is not int or value[5] < 0:
            raise EnvelopeError(DropReason.MALFORMED, "version 2 without integer flags")
        flags = value[5]
    if type(kind) is not int:
        raise EnvelopeError(DropReason.MALFORMED, f"kind {kind!r} is not an integer")
    if type(cluster_id) is not str:
        raise EnvelopeError(DropReason.MALFORMED, "cluster id is not a string")
    if type(sender) is not int or sender <= 0:
        raise EnvelopeError(DropReason.MALFORMED, "sender is not a positive integer")
    if type(payload) is not bytes:
        raise EnvelopeError(DropReason.MALFORMED, "payload is not a byte string")
    if flags & ~FLAG_ZLIB:
        raise EnvelopeError(DropReason.BAD_VERSION, f"unknown flags {flags:#x}")
    if kind not in _KINDS:
        raise EnvelopeError(DropReason.UNKNOWN_KIND, f"kind {kind}")
    if flags & FLAG_ZLIB:
        payload = _inflate(payload, max_payload)
    return Envelope(MessageKind(kind), cluster_id, sender, payload)


def _inflate(data: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, limit)
    except zlib.error as exc:
        raise EnvelopeError(DropReason.MALFORMED, f"bad zlib payload ({exc})") from None
    if inflater.unconsumed_tail:
        raise EnvelopeError(DropReason.TOO_LARGE, f"payload inflates beyond {limit} bytes")
    if not inflater.eof:
        raise EnvelopeError(DropReason.MALFORMED, "truncated zlib payload")
    return out


_KINDS = frozenset(int(k) for k in MessageKind)
