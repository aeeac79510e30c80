"""Redis's serve order for clients parked on this node: one write at a time on their keys.

Redis serves a parked client right after the command that made its key ready, before the next
command runs. Here a parked client is served by a replicated write (`ASPEN.BSERVE`) that the
node submits once it has *applied* the readying write; writes submitted meanwhile (pipelined
from other connections, or read in the same pass) would land before the serve in the log and
could take the element first, or a client that arrived later could be served first.

So, per key that a client of this node waits on (a blocking command in flight or parked, a
*watched* key), this node lets one write at a time into the log: a write touching a watched
key waits until every earlier one on that key (client writes, blocking attempts until their
client is parked, serves) has been applied; the serves a write triggers are submitted before
it is released (the driver submits them in the same step as it applies the write). A client
waiting on several keys links them (a push to one decides whether it is still there for a push
to the other), so "that key" means its *group*: the keys linked to it through the clients
waiting now. A write that touches no watched key but one that a queued write touches (a
MULTI over a watched and an unwatched key) queues too, rather than overtake it. Keys nobody
waits on cost nothing. Clients of different nodes still race: the log
decides.

The wait is bounded (`limit`): a key busy longer than that (no leader) lets the write through
rather than stall the client, as the order was before.
"""

from __future__ import annotations

from collections.abc import Iterable

import trio

__all__ = ["KeyGate"]


class KeyGate:
    """Per key: who waits on it here (`watch`), what is in flight on it (`hold`), and the
    writes queued for it, first come first served (`enter`, then `acquire`)."""

    __slots__ = ("_busy", "_changed", "_links", "_queued", "_tickets", "_watched")

    def __init__(self) -> None:
        self._watched: dict[bytes, int] = {}
        # key -> the key sets of the several-key watchers on it (with counts)
        self._links: dict[bytes, dict[tuple[bytes, ...], int]] = {}
        self._busy: dict[bytes, int] = {}
        self._queued: dict[int, tuple[bytes, ...]] = {}  # ticket -> keys, in arrival order
        self._tickets = 0
        self._changed = trio.Event()

    @property
    def active(self) -> bool:
        """Some key is watched or some write queued (else no write needs looking at)."""
        return bool(self._watched) or bool(self._queued)

    def watched(self, keys: Iterable[bytes]) -> bool:
        watched = self._watched
        return any(k in watched for k in keys)

    def must_queue(self, keys: tuple[bytes, ...]) -> bool:
        """A write of `keys` goes through the gate: it touches a watched key, or one that a
        write queued at the gate touches (it must not overtake that one)."""
        if self.watched(keys):
            return True
        return any(k in keys for other in self._queued.values() for k in other)

    def busy(self, key: bytes) -> int:
        return self._busy.get(key, 0)

    def watch(self, keys: tuple[bytes, ...]) -> None:
        for k in keys:
            self._watched[k] = self._watched.get(k, 0) + 1
            if len(keys) > 1:
                links = self._links.setdefault(k, {})
                links[keys] = links.get(keys, 0) + 1

    def unwatch(self, keys: tuple[bytes, ...]) -> None:
        _decrement(self._watched, keys)
        if len(keys) > 1:
            for k in keys:
                links = self._links.get(k)
                if links is not None:
                    n = links.get(keys, 0) - 1
                    if n > 0:
                        links[keys] = n
                    else:
                        links.pop(keys, None)
                        if not links:
                            del self._links[k]

    def group(self, keys: Iterable[bytes]) -> set[bytes]:
        """`keys` and every key linked to them by a client waiting on several."""
        out = set(keys)
        todo = [k for k in out if k in self._links]
        while todo:
            for linked in self._links.get(todo.pop(), ()):
                for k in linked:
                    if k not in out:
                        out.add(k)
                        todo.append(k)
        return out

    def hold(self, keys: Iterable[bytes]) -> None:
        for k in keys:
            self._busy[k] = self._busy.get(k, 0) + 1

    def release(self, keys: Iterable[bytes]) -> None:
        if _decrement(self._busy, keys):
            self._wake()

    def enter(self, keys: tuple[bytes, ...]) -> int:
        """Take a place in the queue of `keys` now (when the command arrives); a ticket."""
        self._tickets += 1
        self._queued[self._tickets] = keys
        return self._tickets

    def leave(self, ticket: int) -> None:
        """Give up a place (idempotent): the command will not run."""
        if self._queued.pop(ticket, None) is not None:
            self._wake()

    def _first_and_clear(self, ticket: int) -> bool:
        keys = self._queued.get(ticket)
        if keys is None:
            return True  # it left
        group = self.group(keys) if self._links else keys
        busy = self._busy
        if any(k in busy for k in group):
            return False
        for t, other in self._queued.items():
            if t == ticket:
                return True
            if any(k in group for k in other):
                return False  # someone who came earlier waits for one of these keys
        return True

    async def acquire(self, ticket: int, limit: float) -> bool:
        """Wait until `ticket` is first for its keys and nothing is in flight on them, then
        hold them (no checkpoint in between). False if `limit` seconds passed first (they
        are held all the same: better out of order than stalled)."""
        ok = False
        with trio.move_on_after(limit):
            while not self._first_and_clear(ticket):
                await self._changed.wait()
            ok = True
        keys = self._queued.pop(ticket, ())
        self.hold(keys)
        if not ok:
            self._wake()
        return ok

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()


def _decrement(counts: dict[bytes, int], keys: Iterable[bytes]) -> bool:
    """Count `keys` down; True if some key reached zero."""
    freed = False
    for k in keys:
        n = counts.get(k, 0) - 1
        if n > 0:
            counts[k] = n
        else:
            counts.pop(k, None)
            freed = True
    return freed
