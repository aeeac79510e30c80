"""Counters every transport keeps: what went out, what came in, what was dropped and why."""

from __future__ import annotations

import collections
import enum

import attrs


class DropReason(enum.StrEnum):
    # outgoing
    QUEUE_FULL = "queue_full"  # the peer's bounded queue was full (slow or dead peer)
    UNREACHABLE = "unreachable"  # no live connection to the peer (or it stopped taking bytes)
    UNKNOWN_PEER = "unknown_peer"  # send() to a node id that is not a configured peer
    TOO_LARGE = "too_large"  # payload above max_message_size
    PARTITIONED = "partitioned"  # memory transport: a partition cut the link
    FAULT = "fault"  # memory transport: the seeded fault model dropped it
    # incoming
    MALFORMED = "malformed"  # did not decode as an envelope
    BAD_VERSION = "bad_version"
    UNKNOWN_KIND = "unknown_kind"  # a kind this release does not know (a newer peer's)
    WRONG_CLUSTER = "wrong_cluster"
    UNKNOWN_SENDER = "unknown_sender"
    SENDER_MISMATCH = "sender_mismatch"  # envelope sender differs from the authenticated link


@attrs.define
class TransportStats:
    """Mutable counters, read by the node for `/metrics` and by tests."""

    sent: int = 0
    received: int = 0
    dropped: collections.Counter[DropReason] = attrs.field(factory=collections.Counter)
    compressed: int = 0  # envelopes sent with a zlib payload (cluster protocol >= 2)
    hellos_received: int = 0  # protocol announcements from peers
    cluster_protocol: int = 1  # the peer protocol every member speaks (transports.protocol)
    auth_refused: int = 0  # CURVE connections the ZAP handler turned away
    missed_edges: int = 0  # ZeroMQ: waits on a socket's FD that messages waited behind
    # Refused handshakes seen by the ROUTER's monitor, by reason: auth (ZAP said no: the
    # same connections as auth_refused), protocol (plaintext on a CURVE port, a replayed or
    # corrupt CURVE handshake), no_detail, no_handshake (closed before any handshake event).
    handshakes_refused: collections.Counter[str] = attrs.field(factory=collections.Counter)
    # Our own handshakes a peer refused (DEALER monitors), by the same reasons.
    outgoing_handshakes_failed: collections.Counter[str] = attrs.field(
        factory=collections.Counter
    )

    def drop(self, reason: DropReason, count: int = 1) -> None:
        self.dropped[reason] += count

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())
