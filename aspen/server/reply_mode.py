"""CLIENT REPLY ON|OFF|SKIP: which replies of a connection are written (Redis 7.0.15's rules).

Redis decides at each reply whether the connection is OFF or skipping; SKIP takes effect for the
next top-level command (a queued one counts), ON answers +OK and clears both. Inside EXEC the
same holds reply by reply: the array's header keeps the count of queued commands while OFF and
SKIP add no element and OFF drops the elements after it, so the client sees a short array, as
with Redis. The modes are settled when a command is handed out (for EXEC, its whole plan at
once), so pipelined commands answered later still follow the order they were sent in.
"""

from __future__ import annotations

from aspen.resp.values import OK, Error, Replies

__all__ = ["NOTHING", "ReplyMode"]

NOTHING = Replies([])
"""A reply that writes nothing (OFF and SKIP's own, and every dropped one)."""

_SYNTAX = Error("ERR syntax error")


class ReplyMode:
    """The CLIENT REPLY flags of one connection."""

    __slots__ = ("off", "quiet", "skip", "skip_next")

    def __init__(self) -> None:
        self.off = False
        self.skip = False  # this command's replies are dropped (the last one was SKIP)
        self.skip_next = False
        self.quiet = False  # some reply may be dropped now or at the next command (a plain
        # attribute: the session reads it for every command)

    def _settle(self) -> None:
        self.quiet = self.off or self.skip or self.skip_next

    @property
    def dropping(self) -> bool:
        return self.off or self.skip

    def begin(self) -> None:
        """A top-level command starts: a SKIP before it applies to it now."""
        self.skip = self.skip_next
        self.skip_next = False

    def end(self) -> None:
        self.skip = False
        self._settle()

    def apply(self, argv: list[bytes]) -> object:
        """Run CLIENT REPLY `argv`: its own reply (NOTHING for OFF and SKIP)."""
        mode = argv[2].lower()
        reply: object = _SYNTAX
        if mode == b"on":
            self.off = self.skip = False
            reply = OK
        elif mode == b"off":
            self.off = True
            reply = NOTHING
        elif mode == b"skip":
            if not self.off:
                self.skip_next = True
            reply = NOTHING
        self._settle()
        return reply
