"""The RESP server's options (`ServerOptions`), apart from aspen.resp.server: that module is
compiled (mypyc), which refuses an attrs `field(factory=...)` default on a typed field."""

from __future__ import annotations

import os

import attrs

from aspen.resp.protocol import DEFAULT_MAX_ARGV, DEFAULT_MAX_BULK_LEN, INLINE_MAX_SIZE

__all__ = ["ServerOptions"]


@attrs.frozen
class ServerOptions:
    """Per-server limits and timings (the node builds this from its config)."""

    max_bulk_len: int = DEFAULT_MAX_BULK_LEN
    max_argv: int = DEFAULT_MAX_ARGV
    max_inline_len: int = INLINE_MAX_SIZE
    max_clients: int = 10000
    max_query_buffer: int = 1024**3  # a partial command larger than this closes the client
    max_output_buffer: int = 1024**3  # unsent replies beyond this pause reading the client
    idle_timeout: float = 0.0  # close after this long without a request; 0 = never (`timeout`)
    shutdown_grace: float = 5.0  # hard cap on a graceful shutdown
    drain_idle: float = 0.5  # during shutdown, close a connection once quiet this long
    recv_size: int = 64 * 1024
    pubsub_output_limit: int = 32 * 1024**2  # unsent output reaching this disconnects
    pubsub_soft_limit: int = 8 * 1024**2  # ... and so does staying at or above this for
    pubsub_soft_seconds: float = 60.0  # longer than this (0 in a limit: none)
    normal_output_limit: int = 0  # the same for clients without subscriptions (Redis:
    normal_soft_limit: int = 0  # client-output-buffer-limit normal 0 0 0, i.e. no limit)
    normal_soft_seconds: float = 0.0
    tls_handshake_timeout: float = 10.0  # a TLS client must finish its handshake within this
    # Serve idle plain-TCP clients from one reactor task (see `_Reactor`); False (or the
    # environment's ASPEN_RESP_REACTOR=0): one wait per connection, as before issue 20.
    reactor: bool = attrs.field(
        factory=lambda: os.environ.get("ASPEN_RESP_REACTOR", "1") != "0")
