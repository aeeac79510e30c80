"""A reply that is not ready yet: what a connection handler returns for a command whose answer
waits on something (a commit, a parked client). A plain class with no I/O, so the kv layer
can wrap one without importing the trio server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable


class Deferred:
    """A reply that is not ready yet; the server awaits `wait()` in request order.

    A lazy Deferred (the default) does its work inside `wait()`, so the server awaits it before
    handing the next command over. A started one (`abandon` given) was already set in motion by
    `handle()`; the server keeps handing over commands behind it and awaits it later, or calls
    `abandon()` instead if the connection dies first, so the handler can let go of it.
    A started one may also offer `detach`/`result`: see `_Batch.run`.
    """

    __slots__ = ("_abandon", "_detach", "_result", "_wait")

    def __init__(
        self,
        wait: Callable[[], Awaitable[object]],
        abandon: Callable[[], None] | None = None,
        detach: Callable[[Callable[[], None]], bool] | None = None,
        result: Callable[[], object] | None = None,
    ) -> None:
        self._wait = wait
        self._abandon = abandon
        # Optional, for a started Deferred: `detach(callback)` asks to be told, by a call of
        # `callback()` from whoever settles it, instead of being awaited (False: not possible
        # now); `result()` then gives the reply without awaiting (see `_Batch.run`).
        self._detach = detach
        self._result = result

    @property
    def started(self) -> bool:
        return self._abandon is not None

    async def wait(self) -> object:
        return await self._wait()

    def abandon(self) -> None:
        if self._abandon is not None:
            self._abandon()
