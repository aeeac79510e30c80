"""Pub/sub: channel and pattern subscriptions, local delivery, and fan-out over the mesh.

`matcher` is Redis's glob matcher for PSUBSCRIBE patterns; `hub` holds one node's
subscriptions and delivers messages (pure: no trio, no sockets); `wire` is the mesh payload;
`mesh` is the trio task that carries this node's PUBLISHes to every peer.
"""

from aspen.pubsub.hub import PubSubClient, PubSubHub
from aspen.pubsub.matcher import match

__all__ = ["PubSubClient", "PubSubHub", "match"]
