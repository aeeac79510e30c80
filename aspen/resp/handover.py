"""The reactor's hand-over of a running batch to its connection's task (aspen/resp/server.py,
`_Reactor`). Kept apart in plain Python: `types.coroutine` and a generator `__await__` are
what make it work, whatever becomes of the server module (a compiled build)."""

from __future__ import annotations

import types
from collections.abc import Coroutine, Generator
from typing import Any

__all__ = ["AGAIN", "HANDOVER", "Adopt", "adopt"]


class HandOver:
    """Awaited by a batch the reactor runs, just before it would really await: the reactor
    sees this object come out of `coro.send`, and the connection's own task resumes the
    coroutine from here (`adopt`), so the await happens in that task."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        yield self


HANDOVER = HandOver()
AGAIN = object()  # the reactor's wake-up meaning "look at the loop's conditions again"


class Adopt:
    """A batch the reactor started, for the connection's task to finish."""

    __slots__ = ("coro",)

    def __init__(self, coro: Coroutine[Any, Any, bool]) -> None:
        self.coro = coro


@types.coroutine
def adopt(coro: Coroutine[Any, Any, bool]) -> Generator[Any, Any, bool]:
    """Resume `coro` (suspended at `HANDOVER`) in the calling task, to its end."""
    return (yield from coro)  # type: ignore[no-any-return]
