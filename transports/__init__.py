"""Peer transports behind one interface: zmq (default), memory (tests), websocket.

``async with open_transport(kind, config) as t:`` then ``await t.send(peer, payload)`` and
``await t.receive()``; see `transports.base` for the contract all three share.
"""

from transports.base import Message, Transport
from transports.envelope import MessageKind
from transports.factory import KINDS, open_transport
from transports.memory import MemoryHub, NetworkFaults
from transports.settings import CurveConfig, NodeId, TransportConfig
from transports.stats import DropReason, TransportStats

__all__ = [
    "KINDS",
    "CurveConfig",
    "DropReason",
    "MemoryHub",
    "Message",
    "MessageKind",
    "NetworkFaults",
    "NodeId",
    "Transport",
    "TransportConfig",
    "TransportStats",
    "open_transport",
]
