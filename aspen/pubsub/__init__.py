"""Pub/sub: channel and pattern subscriptions, local delivery, and fan-out over the mesh.

Patterns match with `aspen.kv.glob` (the one Redis glob matcher); `hub` holds one node's
subscriptions and delivers messages (pure: no trio, no sockets); `wire` is the mesh payload;
`mesh` is the trio task that carries this node's PUBLISHes to every peer.
"""

from aspen.kv.glob import match
from aspen.pubsub.hub import PubSubClient, PubSubHub

__all__ = ["PubSubClient", "PubSubHub", "match"]
