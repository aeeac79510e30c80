"""What the node's parts (writes, reads, membership) need from `ClusterNode`, as a Protocol.

The parts import this, never `aspen.cluster.runtime`: `node.py` imports the parts, so a part
importing the node would be a cycle. Every name here is public on `ClusterNode`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from aspen.cluster.maxmemory import MemoryGuard
    from aspen.cluster.settings import ClusterSettings
    from aspen.cluster.state import ReplicatedState
    from aspen.cluster.stats import NodeStats
    from aspen.raft import RaftCore
    from transports import MessageKind
    from transports.base import TransportBase


class NodeHost(Protocol):
    """The node as its parts see it."""

    @property
    def id(self) -> int: ...
    @property
    def incarnation(self) -> int: ...
    @property
    def settings(self) -> ClusterSettings: ...
    @property
    def stats(self) -> NodeStats: ...
    @property
    def state(self) -> ReplicatedState: ...
    @property
    def memory(self) -> MemoryGuard: ...
    @property
    def transport(self) -> TransportBase | None: ...
    @property
    def raft(self) -> RaftCore:
        """The running core (an assertion error before `run` restored it)."""
        ...

    @property
    def cut_off(self) -> bool: ...
    def kick(self) -> None:
        """Wake the driver: there is work for its next pass."""
        ...

    def send_later(self, peer: int, kind: MessageKind, payload: bytes) -> None:
        """Queue a message; the driver sends it at the end of its current pass."""
        ...

    def clock_ms(self) -> int:
        """The wall clock entries are stamped with."""
        ...

    def start_task(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> bool:
        """Run `fn(*args)` as a task of the node's nursery; False once it takes no more."""
        ...
