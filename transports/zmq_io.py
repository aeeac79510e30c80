"""Waiting on ZeroMQ sockets from trio, without a third-party adapter.

A ZeroMQ socket's ``FD`` is edge-triggered and says only "something changed": the truth is in
``zmq.EVENTS``, and reading ``EVENTS`` (or sending/receiving) can consume the edge. So the rule
is: re-read ``EVENTS`` before every wait, and never wait longer than `WAIT_CAP` (insurance
against a missed edge). Exactly one task may wait on a given socket; in this package every
socket belongs to a single task, which re-checks ``EVENTS`` itself after each send.
"""

from __future__ import annotations

import trio
import zmq

from transports.base import WAIT_CAP


async def wait_for(sock: zmq.Socket[bytes], event: int) -> None:
    """Return once ``sock`` reports ``event`` (zmq.POLLIN or zmq.POLLOUT)."""
    fd = _int_option(sock, zmq.FD)
    while not _int_option(sock, zmq.EVENTS) & event:
        with trio.move_on_after(WAIT_CAP):
            await trio.lowlevel.wait_readable(fd)


def close_socket(sock: zmq.Socket[bytes]) -> None:
    """Wake anything waiting on the FD, then close without lingering."""
    if sock.closed:
        return
    try:
        trio.lowlevel.notify_closing(_int_option(sock, zmq.FD))
    except (zmq.ZMQError, RuntimeError):
        pass  # no trio run (e.g. cleanup after a failed start), or socket already gone
    sock.close(linger=0)


def _int_option(sock: zmq.Socket[bytes], option: int) -> int:
    value = sock.getsockopt(option)
    assert isinstance(value, int)
    return value
