"""Safe by default: a node refuses to expose itself beyond this machine unprotected.

Redis's protected mode, for every door a node has: a client port or control plane reachable
from the network without a password, or a Raft port that accepts log entries from anyone who
can reach it (no CURVE keys on zmq, no mutual TLS on websocket). Each problem names its fix;
`security.insecure = true` accepts the risk knowingly.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aspen.node_config import Config

_ACCEPT = "or write security.insecure = true to accept the risk"


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (a hostname other than localhost is not
    trusted to be one: it may resolve to anything)."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host(address: str) -> str:
    return address.rpartition(":")[0]


def exposure_problems(config: Config) -> list[str]:
    """What `config` would expose unprotected, each worded with its fix; empty if nothing."""
    problems: list[str] = []
    node, sec = config.node, config.security
    if not is_loopback(node.bind) and node.requirepass is None:
        problems.append(
            f'node.bind = "{node.bind}" lets anyone who reaches it run commands without a '
            f"password: set security.requirepass (or bind 127.0.0.1), {_ACCEPT}"
        )
    if config.http.listen and not is_loopback(_host(config.http.listen)) and (
        node.requirepass is None
    ):
        problems.append(
            f'http.listen = "{config.http.listen}" serves /init, /write and membership changes '
            f"to anyone who reaches it: set security.requirepass (the control plane asks for "
            f"it), {_ACCEPT}"
        )
    multi_node = bool(config.peers) or len(config.raft.bootstrap) > 1
    if multi_node and not is_loopback(_host(config.raft.listen)):
        if config.raft.transport == "zmq" and sec.curve_public_key is None:
            problems.append(
                f'raft.listen = "{config.raft.listen}" accepts log entries from anyone who '
                f"reaches it: give every member CURVE keys (`aspen keygen --cluster HOST ...` "
                f"writes them into the configs), {_ACCEPT}"
            )
        if config.raft.transport == "websocket" and not config.tls.peers:
            problems.append(
                f'raft.listen = "{config.raft.listen}" accepts log entries from anyone who '
                f"reaches it: set tls.peers = true with certificates signed by tls.ca_cert_file "
                f"(mutual TLS), {_ACCEPT}"
            )
    return problems
