"""The per-node server commands (aspen.server.specs): SLOWLOG, WAIT, CLIENT KILL (ID,
TYPE, ADDR, LADDR, USER, SKIPME and the old addr form; MAXAGE is Redis 7.4's), CLIENT
PAUSE / UNPAUSE (aspen.server.pause), NO-EVICT, GETREDIR.

`ServerCommands` is the node's layer for them (`Route.NODE`): the node's `AdminCommands`
inherits it and gives it the node (`self._node`, an aspen.daemon.Node: its RESP server and
connections, its cluster runtime, its slowlog and parameters). Each method takes the
command's argv and returns the reply (a `Deferred` when it has to wait).
"""

from __future__ import annotations

from typing import Any

import trio

from aspen.kv.session import Session
from aspen.resp.server import Deferred
from aspen.resp.values import OK, Error, SimpleString, Verbatim
from aspen.server.latency_report import doctor, histograms

__all__ = ["ServerCommands"]

_NOT_INTEGER = Error("ERR value is not an integer or out of range")
_SYNTAX = Error("ERR syntax error")
_WAIT_POLL = 0.005  # seconds between looks at the followers' match indexes


def _int(raw: bytes) -> int | None:
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        return None
    if not text or text != text.strip() or text.startswith("+"):
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return value if -(2**63) <= value < 2**63 else None


class ServerCommands:
    """SLOWLOG, WAIT and CLIENT KILL for the node in `self._node`."""

    _node: Any
    _me: Session | None  # the calling connection's session (CLIENT KILL SKIPME)
    _push: Any  # its unsolicited-output function (MONITOR)

    # -- SLOWLOG --------------------------------------------------------------------------

    def cmd_slowlog(self, argv: list[bytes]) -> object:
        slowlog = self._node.slowlog
        sub = argv[1].lower()
        if sub == b"help":
            return [SimpleString(line) for line in _SLOWLOG_HELP]
        if sub == b"len":
            return len(slowlog.entries)
        if sub == b"reset":
            slowlog.reset()
            return OK
        count = 10
        if len(argv) == 3:
            value = _int(argv[2])
            if value is None or value < -1:
                return Error("ERR count should be greater than or equal to -1")
            count = value
        elif len(argv) > 3:
            shown = argv[1].decode("utf-8", "replace")
            return Error(f"ERR unknown subcommand or wrong number of arguments for '{shown}'. "
                         "Try SLOWLOG HELP.")
        return slowlog.get(count)

    # -- WAIT -----------------------------------------------------------------------------

    def cmd_wait(self, argv: list[bytes]) -> object:
        """How many replicas hold this connection's writes: in Raft terms, on the leader, the
        followers whose match index reaches the commit index (every write this connection
        was answered for is at or below it); a follower answers the quorum less one (its
        writes are committed, so a majority of the voters hold them, this node among them)."""
        wanted = _int(argv[1])
        if wanted is None:
            return _NOT_INTEGER
        timeout = _int(argv[2])
        if timeout is None:
            return Error("ERR timeout is not an integer or out of range")
        if timeout < 0:
            return Error("ERR timeout is negative")
        cluster = self._node.cluster
        if cluster.core is None:
            return 0
        status = cluster.status()
        if status["role"] != "leader":
            voters = len(status["membership"]["voters"])
            return max(voters // 2, 0)
        target = int(status["commit_index"])

        def holding() -> int:
            st = cluster.status()
            if st["role"] != "leader":
                return max(len(st["membership"]["voters"]) // 2, 0)
            return sum(1 for m in st["match_index"].values() if m is not None and m >= target)

        now = holding()
        if now >= wanted or wanted <= 0:
            return now

        async def wait() -> object:
            deadline = trio.current_time() + timeout / 1000 if timeout else float("inf")
            while trio.current_time() < deadline:
                count = holding()
                if count >= wanted:
                    return count
                await trio.sleep(_WAIT_POLL)
            return holding()

        return Deferred(wait)

    # -- CLIENT KILL ----------------------------------------------------------------------

    def cmd_client_kill(self, argv: list[bytes]) -> object:
        me = self._me
        server = self._node.server
        conns = list(server.connections.values())
        if len(argv) == 3:  # the old form: CLIENT KILL addr:port
            addr = argv[2].decode("utf-8", "replace")
            found = [c for c in conns if c.addr == addr]
            if not found:
                return Error("ERR No such client")
            for conn in found:
                _kill(conn, me)
            return OK
        if len(argv) % 2:
            return _SYNTAX
        tests: list[Any] = []
        skipme = True
        for i in range(2, len(argv), 2):
            opt, raw = argv[i].lower(), argv[i + 1]
            text = raw.decode("utf-8", "replace")
            if opt == b"id":
                value = _int(raw)
                if value is None or value < 1:
                    return Error("ERR client-id should be greater than 0")
                tests.append(lambda c, v=value: c.client_id == v)
            elif opt == b"type":
                kind = text.lower()
                if kind not in ("normal", "master", "slave", "replica", "pubsub"):
                    return Error(f"ERR Unknown client type '{text}'")
                tests.append(lambda c, k=kind: _type_of(c) == k)
            elif opt == b"addr":
                tests.append(lambda c, a=text: c.addr == a)
            elif opt == b"laddr":
                tests.append(lambda c, a=text: c.laddr == a)
            elif opt == b"user":
                acl = self._node.keyspace.acl
                if raw != b"default" and raw not in acl.users:
                    return Error(f"ERR No such user '{text}'")
                tests.append(lambda c, u=raw: _session(c) is not None
                             and _session(c).username == u)  # type: ignore[union-attr]
            elif opt == b"skipme":
                if text.lower() not in ("yes", "no"):
                    return _SYNTAX
                skipme = text.lower() == "yes"
            else:
                return _SYNTAX
        killed = 0
        for conn in conns:
            session = _session(conn)
            if skipme and me is not None and session is me:
                continue
            if all(test(conn) for test in tests):
                _kill(conn, me)
                killed += 1
        return killed


    # -- LATENCY --------------------------------------------------------------------------

    def cmd_latency(self, argv: list[bytes]) -> object:
        latency = self._node.latency
        sub = argv[1].lower()
        if sub == b"latest":
            return latency.latest()
        if sub == b"history":
            return latency.history(argv[2])
        if sub == b"reset":
            return latency.reset(argv[2:])
        if sub == b"histogram":
            return histograms(self._node.command_stats, argv[2:])
        if sub == b"doctor":
            return Verbatim(doctor(latency, self._node.slowlog.slower_than).encode())
        return [SimpleString(line) for line in _LATENCY_HELP]

    # -- MONITOR --------------------------------------------------------------------------

    def cmd_monitor(self, argv: list[bytes]) -> object:
        me = self._me
        push = self._push
        if me is None or push is None:
            return Error("ERR 'monitor' is not available on this connection")
        if me.in_multi:
            return Error("ERR MONITOR isn't allowed for DISCARD")
        self._node.monitors.add(me.client_id, push)
        return OK

    # -- CLIENT PAUSE / UNPAUSE / NO-EVICT / GETREDIR -------------------------------------

    def cmd_client_pause(self, argv: list[bytes]) -> object:
        timeout = _int(argv[2])
        if timeout is None:
            return Error("ERR timeout is not an integer or out of range")
        if timeout < 0:
            return Error("ERR timeout is negative")
        mode = "all"
        if len(argv) == 4:
            mode = argv[3].decode("utf-8", "replace").lower()
            if mode not in ("write", "all"):
                return Error("ERR CLIENT PAUSE mode must be WRITE or ALL")
        elif len(argv) > 4:
            shown = argv[1].decode("utf-8", "replace")
            return Error(f"ERR unknown subcommand or wrong number of arguments for '{shown}'. "
                         "Try CLIENT HELP.")
        self._node.pause.pause(mode, timeout / 1000)
        return OK

    def cmd_client_unpause(self, argv: list[bytes]) -> object:
        self._node.pause.unpause()
        return OK

    def cmd_client_no_evict(self, argv: list[bytes]) -> object:
        """Accepted: Aspen never evicts clients (maxmemory-clients has no effect)."""
        if argv[2].lower() not in (b"on", b"off"):
            return _SYNTAX
        return OK

    def cmd_client_getredir(self, argv: list[bytes]) -> object:
        return -1  # no client tracking: never redirected


def _session(conn: Any) -> Session | None:
    handler = getattr(conn, "handler", None)
    session = getattr(handler, "session", handler)
    return session if isinstance(session, Session) else None


def _type_of(conn: Any) -> str:
    session = _session(conn)
    pubsub = session.pubsub if session is not None else None
    return "pubsub" if pubsub is not None and pubsub.count else "normal"


def _kill(conn: Any, me: Session | None) -> None:
    session = _session(conn)
    if me is not None and session is me:
        me.should_close = True  # after this reply, as Redis closes the caller
    else:
        conn.kill("CLIENT KILL")


_SLOWLOG_HELP = (
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Prints this help.",
)
_LATENCY_HELP = (
    "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "GRAPH <event>",
    "    Return an ASCII latency graph for the <event> class.",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HISTOGRAM [COMMAND ...]",
    "    Return a cumulative distribution of latencies in the format of a histogram for the "
    "specified command names.",
    "    If no commands are specified then all histograms are replied.",
    "HELP",
    "    Prints this help.",
)
