"""Redis closes, at once, the clients an ACL change takes the right from: a deleted user's
connections, and subscribers to channels or patterns their user may no longer use. The
others stay (issue 18 item 1)."""

from __future__ import annotations

import socket

import redis

from harness.bench.servers import aspen_node
from harness.daemons import wait_until


def _closed(sock: socket.socket) -> bool:
    """The server closed `sock` (EOF), with nothing sent by us since AUTH's reply."""
    sock.settimeout(0.1)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def _authenticated(port: int, user: str, password: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(f"AUTH {user} {password}\r\n".encode())
    assert sock.recv(64) == b"+OK\r\n"
    return sock


def test_revoked_subscribers_and_deleted_users_are_disconnected() -> None:
    with aspen_node() as node:
        admin = redis.Redis(port=node.port)
        for user, rules in (("sub", ["&news:*", "&alerts"]), ("keeps", ["&news:*"]),
                            ("gone", [])):
            assert admin.execute_command("ACL", "SETUSER", user, "on", ">pw", "~*", "+@all",
                                         *rules)
        revoked = _authenticated(node.port, "sub", "pw")
        revoked.sendall(b"SUBSCRIBE news:1\r\n")
        kept = _authenticated(node.port, "keeps", "pw")
        kept.sendall(b"PSUBSCRIBE news:*\r\n")
        for sock in (revoked, kept):
            assert b"subscribe" in sock.recv(256)
        idle = _authenticated(node.port, "gone", "pw")
        # Taking channels from one user; a rule change that keeps them for another
        assert admin.execute_command("ACL", "SETUSER", "sub", "resetchannels", "&alerts")
        assert admin.execute_command("ACL", "SETUSER", "keeps", "+get")
        assert wait_until("the revoked subscriber closed", lambda: _closed(revoked), 5)
        assert not _closed(idle) and not _closed(kept)
        assert admin.publish("news:2", "still here") == 1
        kept.settimeout(5)
        assert b"still here" in kept.recv(256)
        # Deleting a user closes its idle connection without waiting for a command
        assert admin.execute_command("ACL", "DELUSER", "gone") == 1
        assert wait_until("the deleted user's connection closed", lambda: _closed(idle), 5)
        for sock in (revoked, kept, idle):
            sock.close()
