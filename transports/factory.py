"""Pick a transport by name (the config's ``transport = "zmq"`` etc.)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Literal

from transports.base import TransportBase
from transports.memory import MemoryHub, open_memory_transport
from transports.settings import TransportConfig
from transports.websocket import open_websocket_transport
from transports.zmq_transport import open_zmq_transport

TransportKind = Literal["zmq", "memory", "websocket"]
KINDS: tuple[TransportKind, ...] = ("zmq", "memory", "websocket")


def open_transport(
    kind: str, config: TransportConfig, *, hub: MemoryHub | None = None
) -> AbstractAsyncContextManager[TransportBase]:
    """``async with open_transport("zmq", config) as t:``; ``memory`` needs the shared hub."""
    if kind == "zmq":
        return open_zmq_transport(config)
    if kind == "websocket":
        return open_websocket_transport(config)
    if kind == "memory":
        if hub is None:
            raise ValueError("memory transport: pass hub=MemoryHub(...) shared by all nodes")
        return open_memory_transport(config, hub)
    raise ValueError(f"unknown transport {kind!r} (expected one of {', '.join(KINDS)})")
