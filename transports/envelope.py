"""The envelope every transport puts around a payload: CBOR ``[version, kind, cluster, sender,
payload]``.

Decoding never trusts its input: anything that is not exactly that shape raises
`EnvelopeError` with the `DropReason` to count, so a transport can drop it and carry on.
"""

from __future__ import annotations

import enum

import attrs
import cbor2

from transports.stats import DropReason

VERSION = 1


class MessageKind(enum.IntEnum):
    """What the payload is: Raft traffic, forwarded client traffic, or pub/sub messages."""

    RAFT = 0
    CLIENT_REQUEST = 1  # a follower forwards a client's request to the leader
    CLIENT_REPLY = 2  # the leader's reply, naming the request id inside the payload
    PUBSUB = 3  # PUBLISHed messages for the receiver's local subscribers (aspen.pubsub.wire)


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
    return cbor2.dumps(
        [VERSION, int(envelope.kind), envelope.cluster_id, envelope.sender, envelope.payload]
    )


def decode(data: bytes) -> Envelope:
    """Parse and shape-check one envelope; raises `EnvelopeError` on anything unexpected."""
    try:
        value = cbor2.loads(data)
    except Exception as exc:  # cbor2 raises several types on hostile input; all mean "garbage"
        raise EnvelopeError(DropReason.MALFORMED, f"not CBOR ({type(exc).__name__})") from None
    if not isinstance(value, list) or len(value) != 5:
        raise EnvelopeError(DropReason.MALFORMED, "not a 5-element array")
    version, kind, cluster_id, sender, payload = value
    if type(version) is not int:
        raise EnvelopeError(DropReason.MALFORMED, "version is not an integer")
    if version != VERSION:
        raise EnvelopeError(DropReason.BAD_VERSION, f"version {version}")
    if type(kind) is not int or kind not in _KINDS:
        raise EnvelopeError(DropReason.MALFORMED, f"unknown kind {kind!r}")
    if type(cluster_id) is not str:
        raise EnvelopeError(DropReason.MALFORMED, "cluster id is not a string")
    if type(sender) is not int or sender <= 0:
        raise EnvelopeError(DropReason.MALFORMED, "sender is not a positive integer")
    if type(payload) is not bytes:
        raise EnvelopeError(DropReason.MALFORMED, "payload is not a byte string")
    return Envelope(MessageKind(kind), cluster_id, sender, payload)


_KINDS = frozenset(int(k) for k in MessageKind)
