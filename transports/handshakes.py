"""Watch the ROUTER's ZeroMQ monitor for refused handshakes: count each one, log it.

The ZAP handler sees only handshakes that got as far as asking it (a CURVE client with a
well-formed HELLO/INITIATE). Everything refused earlier never reaches it: a plaintext client
on a CURVE port, a replayed handshake (CurveZMQ's per-connection cookie no longer opens), a
port scanner or any bytes that are not ZMTP. libzmq reports those only on a socket monitor,
so one task reads the ROUTER's monitor (a PAIR socket, waited on the way `zmq_io` waits on
every socket) and turns each failure into a counter and a rate-limited warning.

libzmq's (version 1) events do not name the remote address of a bound socket's connection;
the ACCEPTED event gives the connection's file descriptor, so the peer address is read from
it while it is still open (``unknown`` when the connection was already gone, which is the
usual case for garbage refused within the accept call, or when its close is already among the
events read: the descriptor may belong to a newer connection by then). A failure event is
immediately followed by the DISCONNECTED event of its connection (both raised in one call on
the single I/O thread), which ties the reason to the address. A connection closed with no
handshake event at all (bytes that are not ZMTP, or a silent peer) counts as
``no_handshake``. Success events carry no descriptor, so a success forgets every connection
then waiting for its handshake: one of them succeeded, the others go uncounted if they fail
silently. That undercounts garbage sent alongside real peers' handshakes, but never blames a
real peer.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct

import zmq

from transports.refusals import RefusalLog
from transports.stats import TransportStats
from transports.zmq_io import POLLIN, close_socket, int_option, wait_for

_EVENTS = (
    zmq.EVENT_ACCEPTED
    | zmq.EVENT_DISCONNECTED
    | zmq.EVENT_HANDSHAKE_SUCCEEDED
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)
_FAILURES = {
    int(zmq.EVENT_HANDSHAKE_FAILED_AUTH): "auth",
    int(zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL): "protocol",
    int(zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL): "no_detail",
}
_PROTOCOL_ERRORS = {
    int(v): k.removeprefix("PROTOCOL_ERROR_").lower()
    for k, v in vars(zmq).items()
    if k.startswith("PROTOCOL_ERROR_") and isinstance(v, int)
}


class HandshakeWatch:
    """The state machine over one bound socket's monitor events (no I/O: testable alone)."""

    def __init__(self, stats: TransportStats, refusals: RefusalLog) -> None:
        self._stats = stats
        self._refusals = refusals
        self._waiting: dict[int, str] = {}  # fd -> peer address, handshake not yet done
        self._failure: tuple[str, str] | None = None  # (reason, detail) awaiting its fd

    def on_event(self, event: int, value: int, peer: str | None = None) -> None:
        if event == zmq.EVENT_ACCEPTED:
            self._waiting[value] = peer or "unknown"
        elif event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            # Whose? Certain only if one was waiting; else forget all (never blame a peer).
            self._waiting.clear()
        elif event in _FAILURES:
            reason = _FAILURES[event]
            self._failure = (reason, _detail(reason, value))
        elif event == zmq.EVENT_DISCONNECTED:
            address = self._waiting.pop(value, None)
            failure, self._failure = self._failure, None
            if failure is None:
                if address is None:
                    return  # an established connection ended, or one we lost track of
                failure = ("no_handshake", "closed before completing a ZMTP handshake")
            reason, detail = failure
            self._stats.handshakes_refused[reason] += 1
            if reason == "auth":
                return  # the ZAP handler has logged it, with the key it refused
            self._refusals.warn(
                "refused peer connection from %s: handshake failed (%s: %s)",
                address or "unknown",
                reason,
                detail,
            )


def _detail(reason: str, value: int) -> str:
    if reason == "protocol":
        return _PROTOCOL_ERRORS.get(value, f"protocol error {value:#x}")
    if reason == "auth":
        return f"ZAP status {value}"
    return os.strerror(value) if value > 0 else "no detail"


def _peer_of(fd: int) -> str | None:
    """The remote address of a descriptor libzmq still holds, if it is still open."""
    try:
        dup = os.dup(fd)
    except OSError:
        return None
    try:
        sock = socket.socket(fileno=dup)
    except OSError:
        os.close(dup)
        return None
    with contextlib.closing(sock):
        try:
            host, port, *_ = sock.getpeername()
        except (OSError, ValueError, TypeError):
            return None
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def open_monitor(sock: zmq.Socket[bytes]) -> zmq.Socket[bytes]:
    """Start monitoring `sock` (call before bind so nothing is missed)."""
    return sock.get_monitor_socket(_EVENTS)


async def run_handshake_monitor(
    monitor: zmq.Socket[bytes], stats: TransportStats, refusals: RefusalLog
) -> None:
    """Read `monitor` forever; the only task touching it. Also closes interval summaries."""
    watch = HandshakeWatch(stats, refusals)
    fd = monitor.getsockopt(zmq.FD)
    assert isinstance(fd, int)
    try:
        while True:
            events: list[tuple[int, int]] = []
            while True:
                try:
                    frames = monitor.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                if len(frames) == 2 and len(frames[0]) == 6:
                    events.append(struct.unpack("=Hi", frames[0]))
            for i, (event, value) in enumerate(events):
                if event == zmq.EVENT_MONITOR_STOPPED:
                    return
                peer = None
                # A descriptor already reported closed may belong to a newer connection by
                # now: read the address only from one not yet seen closed.
                closed = (zmq.EVENT_DISCONNECTED, value) in events[i:]
                if event == zmq.EVENT_ACCEPTED and not closed:
                    peer = _peer_of(value)
                watch.on_event(event, value, peer)
            refusals.flush()
            await wait_for(monitor, POLLIN, fd)
    finally:
        close_socket(monitor)


_OUTGOING_EVENTS = zmq.EVENT_HANDSHAKE_SUCCEEDED | sum(_FAILURES)
_HINTS = {
    "auth": "; is this node's public key among its curve_peer_keys?",
    "protocol": "; is CURVE on at one end only, or is its public key not the one configured?",
}


class OutgoingHandshakes:
    """A DEALER's view: did the peer refuse our handshake, and why? Polled (never waited on)
    by the peer's sender task, which runs at least once per protocol announcement."""

    def __init__(self, sock: zmq.Socket[bytes]) -> None:
        self._monitor = sock.get_monitor_socket(_OUTGOING_EVENTS)
        self.last_failure: str | None = None

    def poll(self, stats: TransportStats) -> str | None:
        """Count the failures since the last poll; a description of the newest one if it
        differs from the one before (to log once per change, not once per retry)."""
        news = None
        monitor = self._monitor
        while int_option(monitor, zmq.EVENTS) & POLLIN:  # (cheaper than a recv raising Again)
            try:
                frames = monitor.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return news
            if len(frames) != 2 or len(frames[0]) != 6:
                continue
            event, value = struct.unpack("=Hi", frames[0])
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.last_failure = None
            elif event in _FAILURES:
                reason = _FAILURES[event]
                stats.outgoing_handshakes_failed[reason] += 1
                failure = f"{reason}: {_detail(reason, value)}{_HINTS.get(reason, '')}"
                if failure != self.last_failure:
                    news = failure
                self.last_failure = failure
        return news

    def close(self) -> None:
        close_socket(self._monitor)
