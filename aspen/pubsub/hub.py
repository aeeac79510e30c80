"""One node's subscriptions and local delivery (pure: no trio, no sockets).

`PubSubHub` maps channels and patterns to the clients subscribed to them; `publish()`
delivers to this node's subscribers and queues the message for the mesh (`outbound`), while
`deliver()` is what a message that came from a peer gets: local delivery only, never a
re-broadcast. `PubSubClient` is one connection's side: its subscriptions and the replies
(P)SUBSCRIBE and (P)UNSUBSCRIBE send, as `Push` values (RESP3 `>`, RESP2 arrays).

Delivery writes encoded bytes to the client's `sink` (the RESP server's non-blocking
`Connection.push`); each message is encoded at most once per protocol version, however many
subscribers it reaches. Iteration follows subscription order (Redis uses hash order for
channels and unique patterns, which its docs leave unspecified).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from aspen.kv.glob import match
from aspen.pubsub.wire import Item
from aspen.resp.protocol import encode
from aspen.resp.values import Push

__all__ = ["PubSubClient", "PubSubHub"]

Sink = Callable[[bytes], None]
MATCH_CACHE_SIZE = 4096
"""Channels whose matching patterns are remembered (forgotten all at once when full, and
whenever a pattern gains its first or loses its last subscriber)."""
_MESSAGE, _PMESSAGE, _SMESSAGE = b"message", b"pmessage", b"smessage"


class PubSubClient:
    """One connection's subscriptions; `resp` (2 or 3) picks how messages are encoded."""

    __slots__ = ("channels", "hub", "patterns", "resp", "shard_channels", "sink")

    def __init__(self, hub: PubSubHub, sink: Sink, resp: int = 2) -> None:
        self.hub = hub
        self.sink = sink
        self.resp = resp
        self.channels: dict[bytes, None] = {}
        self.patterns: dict[bytes, None] = {}
        self.shard_channels: dict[bytes, None] = {}  # SSUBSCRIBE's (counted on their own)

    @property
    def count(self) -> int:
        """Redis's subscription count: channels plus patterns."""
        return len(self.channels) + len(self.patterns)

    @property
    def total(self) -> int:
        """Every subscription, shard channels included (the RESP2 subscribed context)."""
        return len(self.channels) + len(self.patterns) + len(self.shard_channels)

    def ssubscribe(self, channels: Iterable[bytes]) -> list[Push]:
        replies = []
        for ch in channels:
            if ch not in self.shard_channels:
                self.shard_channels[ch] = None
                self.hub.shard_channels.setdefault(ch, {})[self] = None
            replies.append(Push([b"ssubscribe", ch, len(self.shard_channels)]))
        return replies

    def sunsubscribe(self, channels: Iterable[bytes] = ()) -> list[Push]:
        targets = list(channels) or list(self.shard_channels)
        replies = []
        for ch in targets:
            if ch in self.shard_channels:
                del self.shard_channels[ch]
                _discard(self.hub.shard_channels, ch, self)
            replies.append(Push([b"sunsubscribe", ch, len(self.shard_channels)]))
        return replies or [Push([b"sunsubscribe", None, len(self.shard_channels)])]

    def subscribe(self, channels: Iterable[bytes]) -> list[Push]:
        replies = []
        for ch in channels:
            if ch not in self.channels:
                self.channels[ch] = None
                self.hub.channels.setdefault(ch, {})[self] = None
            replies.append(Push([b"subscribe", ch, self.count]))
        return replies

    def psubscribe(self, patterns: Iterable[bytes]) -> list[Push]:
        replies = []
        for pat in patterns:
            if pat not in self.patterns:
                self.patterns[pat] = None
                self.hub.add_pattern(pat, self)
            replies.append(Push([b"psubscribe", pat, self.count]))
        return replies

    def unsubscribe(self, channels: Iterable[bytes] = ()) -> list[Push]:
        """Leave the given channels, or all of them; one reply each (one if there were none)."""
        targets = list(channels) or list(self.channels)
        replies = []
        for ch in targets:
            if ch in self.channels:
                del self.channels[ch]
                _discard(self.hub.channels, ch, self)
            replies.append(Push([b"unsubscribe", ch, self.count]))
        return replies or [Push([b"unsubscribe", None, self.count])]

    def punsubscribe(self, patterns: Iterable[bytes] = ()) -> list[Push]:
        targets = list(patterns) or list(self.patterns)
        replies = []
        for pat in targets:
            if pat in self.patterns:
                del self.patterns[pat]
                self.hub.drop_pattern(pat, self)
            replies.append(Push([b"punsubscribe", pat, self.count]))
        return replies or [Push([b"punsubscribe", None, self.count])]

    def close(self) -> None:
        """Drop every subscription without replies (RESET, or the connection closed)."""
        hub = self.hub
        for ch in self.channels:
            _discard(hub.channels, ch, self)
        for pat in self.patterns:
            hub.drop_pattern(pat, self)
        for ch in self.shard_channels:
            _discard(hub.shard_channels, ch, self)
        self.channels = {}
        self.patterns = {}
        self.shard_channels = {}


def _discard(
    index: dict[bytes, dict[PubSubClient, None]], name: bytes, client: PubSubClient
) -> None:
    subs = index.get(name)
    if subs is not None:
        subs.pop(client, None)
        if not subs:
            del index[name]


class _Encoded:
    """One push, encoded at most once per protocol version."""

    __slots__ = ("items", "resp2", "resp3")

    def __init__(self, items: list[object]) -> None:
        self.items = items
        self.resp2: bytes | None = None
        self.resp3: bytes | None = None

    def get(self, resp: int) -> bytes:
        if resp == 3:
            if self.resp3 is None:
                self.resp3 = encode(Push(self.items), 3)
            return self.resp3
        if self.resp2 is None:
            self.resp2 = encode(Push(self.items), 2)
        return self.resp2


class PubSubHub:
    """Every subscription on this node; see the module docstring."""

    def __init__(self, on_outbound: Callable[[], None] | None = None) -> None:
        self.channels: dict[bytes, dict[PubSubClient, None]] = {}
        self.patterns: dict[bytes, dict[PubSubClient, None]] = {}
        self.shard_channels: dict[bytes, dict[PubSubClient, None]] = {}
        self.outbound: list[Item] = []
        """Messages published here that the mesh task has yet to send to the peers
        (a third item, True: a shard message, SPUBLISH)."""
        self.on_outbound = on_outbound
        self.mesh_attached = False
        self.stats_published = 0
        self.stats_received = 0
        # channel -> the subscribed patterns it matches; valid while the pattern set is unchanged
        self._matching: dict[bytes, list[bytes]] = {}

    def add_pattern(self, pattern: bytes, client: PubSubClient) -> None:
        subs = self.patterns.get(pattern)
        if subs is None:
            subs = self.patterns[pattern] = {}
            self._matching = {}
        subs[client] = None

    def drop_pattern(self, pattern: bytes, client: PubSubClient) -> None:
        _discard(self.patterns, pattern, client)
        if pattern not in self.patterns:
            self._matching = {}

    def matching_patterns(self, channel: bytes) -> list[bytes]:
        """The subscribed patterns `channel` matches, in subscription order (memoised)."""
        found = self._matching.get(channel)
        if found is None:
            if len(self._matching) >= MATCH_CACHE_SIZE:
                self._matching = {}
            found = self._matching[channel] = [p for p in self.patterns if match(p, channel)]
        return found

    def client(self, sink: Sink, resp: int = 2) -> PubSubClient:
        return PubSubClient(self, sink, resp)

    def publish(self, channel: bytes, message: bytes) -> int:
        """PUBLISH: deliver here, queue for every peer; the number of local receivers."""
        self.stats_published += 1
        if self.mesh_attached:
            self.outbound.append((channel, message))
            if self.on_outbound is not None:
                self.on_outbound()
        return self.deliver(channel, message)

    def spublish(self, channel: bytes, message: bytes) -> int:
        """SPUBLISH: one Raft group serves every shard channel, so like PUBLISH: deliver
        here, queue for every peer; the number of local receivers."""
        self.stats_published += 1
        if self.mesh_attached:
            self.outbound.append((channel, message, True))
            if self.on_outbound is not None:
                self.on_outbound()
        return self.deliver_shard(channel, message)

    def deliver_shard(self, channel: bytes, message: bytes) -> int:
        """Write a shard message (`smessage`) to this node's SSUBSCRIBErs of `channel`."""
        subs = self.shard_channels.get(channel)
        if not subs:
            return 0
        wire = _Encoded([_SMESSAGE, channel, message])
        targets = list(subs)
        for client in targets:
            client.sink(wire.get(client.resp))
        return len(targets)

    def shard_active_channels(self, pattern: bytes | None = None) -> list[bytes]:
        """PUBSUB SHARDCHANNELS."""
        if pattern is None:
            return list(self.shard_channels)
        return [ch for ch in self.shard_channels if match(pattern, ch)]

    def shard_numsub(self, channels: Iterable[bytes]) -> list[object]:
        """PUBSUB SHARDNUMSUB."""
        out: list[object] = []
        for ch in channels:
            out += [ch, len(self.shard_channels.get(ch, ()))]
        return out

    def deliver(self, channel: bytes, message: bytes) -> int:
        """Write `message` to this node's subscribers of `channel`; how many received it."""
        receivers = 0
        subs = self.channels.get(channel)
        if subs:
            wire = _Encoded([_MESSAGE, channel, message])
            targets = list(subs)  # a sink may drop a subscriber (its output overflowed)
            for client in targets:
                client.sink(wire.get(client.resp))
            receivers += len(targets)
        if self.patterns:
            for pattern in self.matching_patterns(channel):
                subs = self.patterns.get(pattern)  # (a sink may have dropped the last one)
                if subs:
                    wire = _Encoded([_PMESSAGE, pattern, channel, message])
                    targets = list(subs)
                    for client in targets:
                        client.sink(wire.get(client.resp))
                    receivers += len(targets)
        return receivers

    def active_channels(self, pattern: bytes | None = None) -> list[bytes]:
        """PUBSUB CHANNELS: channels with at least one subscriber (matching `pattern`)."""
        if pattern is None:
            return list(self.channels)
        return [ch for ch in self.channels if match(pattern, ch)]

    def numsub(self, channels: Iterable[bytes]) -> list[object]:
        """PUBSUB NUMSUB: channel, count, channel, count, ... (patterns not counted)."""
        out: list[object] = []
        for ch in channels:
            out += [ch, len(self.channels.get(ch, ()))]
        return out

    def numpat(self) -> int:
        """PUBSUB NUMPAT: unique patterns subscribed to on this node."""
        return len(self.patterns)
