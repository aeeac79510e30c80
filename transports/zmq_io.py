"""Waiting on ZeroMQ sockets from trio, without a third-party adapter.

A ZeroMQ socket's ``FD`` is edge-triggered and says only "something changed": the truth is in
``zmq.EVENTS``, and reading ``EVENTS`` (or sending/receiving) can consume the edge. So the rule
is: re-read ``EVENTS`` before every wait and after every wake-up, and never wait longer than
`WAIT_CAP` (insurance against a missed edge). Exactly one task may wait on a given socket; in
this package every socket belongs to a single task, which re-checks ``EVENTS`` itself after
each send.
"""

from __future__ import annotations

import trio
import zmq

from transports.base import WAIT_CAP

POLLIN = int(zmq.POLLIN)
POLLOUT = int(zmq.POLLOUT)
"""Plain ints: ``int & zmq.PollEvent`` builds an enum member on every test."""


async def wait_for(sock: zmq.Socket[bytes], event: int, fd: int | None = None) -> None:
    """Return once ``sock`` reports ``event`` (`POLLIN` or `POLLOUT`), or after `WAIT_CAP`.

    A return after `WAIT_CAP` with nothing to do is allowed: every caller retries its
    non-blocking call and waits again on ``zmq.Again``. ``fd`` is the socket's ``zmq.FD``
    if the caller keeps it (one ``getsockopt`` less per wait). One cancel scope per wait,
    not one per wake-up of the FD.
    """
    if int_option(sock, zmq.EVENTS) & event:
        return
    if fd is None:
        fd = int_option(sock, zmq.FD)
    with trio.move_on_after(WAIT_CAP):
        while True:
            await trio.lowlevel.wait_readable(fd)
            if int_option(sock, zmq.EVENTS) & event:
                return


def close_socket(sock: zmq.Socket[bytes]) -> None:
    """Wake anything waiting on the FD, then close without lingering."""
    if sock.closed:
        return
    try:
        trio.lowlevel.notify_closing(int_option(sock, zmq.FD))
    except (zmq.ZMQError, RuntimeError):
        pass  # no trio run (e.g. cleanup after a failed start), or socket already gone
    sock.close(linger=0)


def int_option(sock: zmq.Socket[bytes], option: int) -> int:
    value = sock.getsockopt(option)
    assert isinstance(value, int)
    return value
