"""Transport configuration: who I am, where I listen, who my peers are.

Addresses are plain ``host:port`` strings for every transport; each transport turns them into
its own URL form (``tcp://host:port`` for ZeroMQ, ``ws://host:port/aspen`` for WebSocket).
Port 0 binds a free port; the transport's ``address`` property then says which one.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

NodeId = int
"""Node ids are positive integers (``transports`` knows nothing else about nodes)."""

DEFAULT_QUEUE_SIZE = 4096
DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024
"""64 MiB: well above trio-websocket's 1 MiB default so snapshot chunks fit on every transport."""


def _frozen_mapping(value: Mapping[Any, Any]) -> Mapping[Any, Any]:
    return MappingProxyType(dict(value))


def _check_node_id(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"transport: {attribute.name} must be a positive integer, got {value!r}")


def _check_peers(inst: TransportConfig, _attribute: attrs.Attribute[Any], value: object) -> None:
    assert isinstance(value, Mapping)
    for peer, address in value.items():
        if not isinstance(peer, int) or isinstance(peer, bool) or peer <= 0:
            raise ValueError(f"transport: peers: node id {peer!r} must be a positive integer")
        if peer == inst.node_id:
            raise ValueError(f"transport: peers: node {peer} cannot be its own peer")
        split_address(address)


def _check_positive(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"transport: {attribute.name} must be positive, got {value!r}")


def split_address(address: str) -> tuple[str, int]:
    """``"127.0.0.1:7000"`` -> ``("127.0.0.1", 7000)``, with an error naming the address."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"transport: address {address!r} is not host:port")
    return host.strip("[]"), int(port)


@attrs.frozen
class CurveConfig:
    """CURVE keys (Z85 text, 40 bytes each): mine, and every peer's public key.

    Only peers listed in ``peer_keys`` are admitted by the ZAP handler (see ``transports.curve``).
    """

    public_key: bytes
    secret_key: bytes
    peer_keys: Mapping[NodeId, bytes] = attrs.field(factory=dict, converter=_frozen_mapping)

    def __attrs_post_init__(self) -> None:
        for name, key in [("public_key", self.public_key), ("secret_key", self.secret_key)]:
            _check_z85(name, key)
        for peer, key in self.peer_keys.items():
            _check_z85(f"peer_keys[{peer}]", key)


def _check_z85(name: str, key: bytes) -> None:
    if not isinstance(key, bytes) or len(key) != 40:
        raise ValueError(f"transport: curve {name} must be a 40-byte Z85 key")


@attrs.frozen
class TransportConfig:
    """Everything a transport needs; frozen, validated on construction.

    ``queue_size`` bounds each peer's outgoing queue (overflow drops and counts); ZeroMQ's
    SNDHWM is set to the same value, so keep it at least Raft's in-flight window.
    ``inbox_size`` bounds the received-but-not-yet-consumed messages (a full inbox pushes back
    on the senders instead of dropping; on ZeroMQ the receiving ROUTER's own pipe, up to a
    million messages, fills first: see zmq_transport for the libzmq bug that forces this).
    ``send_timeout`` is how long a sender waits on a peer that takes no more bytes before
    calling it unreachable: ZeroMQ then drops (counted) until
    a send succeeds again; WebSocket drops the connection and reconnects.
    ``max_message_size`` bounds a payload on every transport (default 64 MiB); bigger sends
    are dropped and counted, so Raft must chunk snapshots below it.
    """

    node_id: NodeId = attrs.field(validator=_check_node_id)
    cluster_id: str = attrs.field(
        validator=attrs.validators.and_(
            attrs.validators.instance_of(str), attrs.validators.min_len(1)
        )
    )
    bind: str = attrs.field(default="127.0.0.1:0")
    peers: Mapping[NodeId, str] = attrs.field(
        factory=dict, converter=_frozen_mapping, validator=_check_peers
    )
    queue_size: int = attrs.field(default=DEFAULT_QUEUE_SIZE, validator=_check_positive)
    inbox_size: int = attrs.field(default=DEFAULT_QUEUE_SIZE, validator=_check_positive)
    max_message_size: int = attrs.field(default=DEFAULT_MAX_MESSAGE_SIZE, validator=_check_positive)
    send_timeout: float = attrs.field(default=1.0, validator=_check_positive)
    curve: CurveConfig | None = None
    tls_server: ssl.SSLContext | None = None
    """wss: the context this node serves its peers with (None: plain ws)."""
    tls_client: ssl.SSLContext | None = None
    """wss: the context this node reaches its peers with (None: plain ws)."""

    def __attrs_post_init__(self) -> None:
        split_address(self.bind)
        if self.curve is not None:
            missing = sorted(set(self.peers) - set(self.curve.peer_keys))
            if missing:
                raise ValueError(f"transport: curve.peer_keys lacks a key for peers {missing}")
