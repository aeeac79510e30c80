"""The one lifecycle all transports share: an async context manager owning a nursery."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import trio

from transports.base import TransportBase

T = TypeVar("T", bound=TransportBase)


@asynccontextmanager
async def running(
    transport: T, start: Callable[[trio.Nursery], Awaitable[None]]
) -> AsyncIterator[T]:
    """Run ``start`` (bind, start the receiving side) then the peers; tear all down on exit.

    Teardown order matters: cancel the tasks (each closes its own sockets), then let the
    transport close what is left (listening socket, context) and wake `receive()` waiters.
    A lone exception is unwrapped from trio's ExceptionGroup so callers see what went wrong.
    """
    try:
        try:
            async with trio.open_nursery() as nursery:
                await start(nursery)
                transport._start(nursery)
                try:
                    yield transport
                finally:
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from group
            raise
    finally:
        transport._close()
