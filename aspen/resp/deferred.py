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

    The hot kinds (a connection's submitted write or started read) subclass it and override
    `wait_for`, `abandon`, `detach` and `result` instead of passing four bound methods: one
    object per request instead of six. The server tests `isinstance`, never the exact type.
    """

    __slots__ = ("_abandon", "_detach", "_result", "_wait", "started")

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
        self.started = abandon is not None

    def wait_for(self) -> Awaitable[object]:
        """The awaitable of the reply (the server awaits it: one frame less than `wait`)."""
        return self._wait()

    async def wait(self) -> object:
        return await self.wait_for()

    def abandon(self) -> None:
        if self._abandon is not None:
            self._abandon()

    def detach(self, callback: Callable[[], None]) -> bool:
        """Have `callback()` called once the reply is ready instead of being awaited; False:
        not possible (now), await it."""
        return self._detach is not None and self._detach(callback)

    def result(self) -> object:
        """The reply of a detached Deferred once its callback was called."""
        assert self._result is not None
        return self._result()
