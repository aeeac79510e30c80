"""Protocol versions between peers: who speaks what, and what the cluster may use.

Each release has a peer protocol version (`PROTOCOL`) and a set of features. Version 1 is
every release before announcements existed: it sends and reads only version-1 envelopes and
drops (and counts) a message kind it does not know. From version 2 on, every node sends each
peer a HELLO (``MessageKind.HELLO``, a CBOR map ``{"protocol", "features", "release"}``,
unknown keys ignored) every `HELLO_INTERVAL` seconds; a version-1 node drops it harmlessly.

A peer's announcement holds for `HELLO_TTL` seconds. A peer never heard from (or not for that
long: stopped, partitioned, or rolled back to a release without HELLO) counts as version 1.
The cluster's protocol, as each node sees it, is the minimum over itself and every current
peer; a feature that an older member could not read is used only while that minimum allows
it, so a mixed cluster (a rolling upgrade in progress) runs at the oldest member's version
and switches once every member has announced the new one.

Version 2's features: ``hello`` (these announcements) and ``zlib`` (version-2 envelopes with
zlib-compressed payloads for large messages; `transports.envelope`).
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs
import cbor2

from transports.settings import NodeId

PROTOCOL = 2
FEATURES: tuple[str, ...] = ("hello", "zlib")
RELEASE = "aspen-peer-2"
HELLO_INTERVAL = 1.0
HELLO_TTL = 5.0
OLDEST = 1
"""What a peer that never announced itself speaks."""


@attrs.frozen
class Hello:
    protocol: int
    features: frozenset[str]
    release: str = ""


class HelloError(ValueError):
    pass


def encode_hello(hello: Hello) -> bytes:
    return cbor2.dumps(
        {"protocol": hello.protocol, "features": sorted(hello.features), "release": hello.release}
    )


def decode_hello(data: bytes) -> Hello:
    """Tolerant of what a newer release adds (unknown keys, unknown feature names)."""
    try:
        value = cbor2.loads(data)
    except Exception as exc:  # hostile input: any cbor2 error means garbage
        raise HelloError(f"not CBOR ({type(exc).__name__})") from None
    if not isinstance(value, dict):
        raise HelloError("not a map")
    protocol = value.get("protocol")
    features = value.get("features", [])
    release = value.get("release", "")
    if type(protocol) is not int or protocol < 1:
        raise HelloError(f"protocol {protocol!r} is not a positive integer")
    if not isinstance(features, list) or not all(type(f) is str for f in features):
        raise HelloError("features is not a list of strings")
    if type(release) is not str:
        raise HelloError("release is not a string")
    return Hello(protocol, frozenset(features), release[:100])


OWN_HELLO = Hello(PROTOCOL, frozenset(FEATURES), RELEASE)


class PeerVersions:
    """The latest announcement of each peer, with the time it arrived."""

    def __init__(self) -> None:
        self._heard: dict[NodeId, tuple[Hello, float]] = {}

    def record(self, peer: NodeId, hello: Hello, now: float) -> bool:
        """Note an announcement; True if it is news (first, changed, or after expiry)."""
        before = self._heard.get(peer)
        self._heard[peer] = (hello, now)
        return before is None or before[0] != hello or now - before[1] > HELLO_TTL

    def forget(self, peer: NodeId) -> None:
        self._heard.pop(peer, None)

    def protocol_of(self, peer: NodeId, now: float) -> int:
        heard = self._heard.get(peer)
        if heard is None or now - heard[1] > HELLO_TTL:
            return OLDEST
        return heard[0].protocol

    def cluster_protocol(self, peers: Iterable[NodeId], now: float) -> int:
        """min(own version, every peer's): what every member can read."""
        return min([PROTOCOL, *(self.protocol_of(p, now) for p in peers)])
