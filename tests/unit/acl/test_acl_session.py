"""ACL in the session and the keyspace: what an attacker tries is refused, logged, and
changes nothing; users replicate as ops and travel in snapshots; requirepass still works."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from aspen.kv.keyspace import Keyspace
from aspen.kv.ops import ReadOp, TxnOp, WriteOp
from aspen.kv.session import Session
from aspen.resp.values import OK, Error, Map
from harness.local_kv import LocalContext, LocalExecutor

NOW = 1_700_000_000_000


class Node:
    def __init__(self, requirepass: bytes | None = None, keyspace: Keyspace | None = None):
        self.keyspace = keyspace or Keyspace()
        self.executor = LocalExecutor(self.keyspace, lambda: NOW)
        self.ctx = LocalContext(self.keyspace, requirepass=requirepass, clock=lambda: NOW)
        self.ops: list[WriteOp] = []

    def session(self, client_id: int = 1) -> Session:
        return Session(client_id, self.ctx)

    def call(self, session: Session, *args: str | bytes) -> object:
        argv = [a.encode() if isinstance(a, str) else a for a in args]
        out = session.handle(argv)
        if isinstance(out, (ReadOp, WriteOp, TxnOp)):
            if isinstance(out, WriteOp):
                self.ops.append(out)
            out = session.finish(out, self.executor.execute(out))
        return out


def _log(node: Node, admin: Session) -> list[dict[bytes, object]]:
    entries = node.call(admin, "ACL", "LOG")
    assert isinstance(entries, list)
    return [dict(e.items) for e in entries]


@pytest.fixture
def node() -> Node:
    n = Node()
    admin = n.session(1)
    assert (
        n.call(admin, "ACL", "SETUSER", "reader", "on", ">rpw", "~pub:*", "+@read", "+@transaction")
        == OK
    )
    assert n.call(admin, "SET", "pub:1", "hello") == OK
    assert n.call(admin, "SET", "secret", "s") == OK
    return n


def test_wrong_password_and_unknown_user_are_refused_and_logged(node: Node) -> None:
    s = node.session(2)
    wrongpass = Error("WRONGPASS invalid username-password pair or user is disabled.")
    assert node.call(s, "AUTH", "reader", "nope") == wrongpass
    assert node.call(s, "AUTH", "ghost", "x") == wrongpass
    assert node.call(s, "HELLO", "3", "AUTH", "reader", "nope") == wrongpass
    assert s.username == b"default"
    log = _log(node, node.session(1))
    assert [(e[b"reason"], e[b"username"], e[b"object"]) for e in log] == [
        (b"auth", b"reader", b"HELLO"),
        (b"auth", b"ghost", b"AUTH"),
        (b"auth", b"reader", b"AUTH"),
    ]
    assert isinstance(node.call(s, "HELLO", "3", "AUTH", "reader", "rpw"), Map)
    assert node.call(s, "ACL", "WHOAMI") == Error(
        "NOPERM this user has no permissions to run the 'acl|whoami' command"
    )


def test_a_user_cannot_touch_other_keys_or_commands(node: Node) -> None:
    s = node.session(2)
    assert node.call(s, "AUTH", "reader", "rpw") == OK
    before = node.keyspace.digest()
    keys_err = Error(
        "NOPERM this user has no permissions to access one of the keys used as arguments"
    )
    assert node.call(s, "GET", "secret") == keys_err
    assert node.call(s, "MGET", "pub:1", "secret") == keys_err
    assert node.call(s, "SET", "pub:1", "x") == Error(
        "NOPERM this user has no permissions to run the 'set' command"
    )
    assert node.call(s, "ACL", "SETUSER", "reader", "+@all") == Error(
        "NOPERM this user has no permissions to run the 'acl|setuser' command"
    )
    assert node.call(s, "FLUSHALL") == Error(
        "NOPERM this user has no permissions to run the 'flushall' command"
    )
    # inside MULTI a refused command dooms the transaction (Redis's rule)
    assert node.call(s, "MULTI") == OK
    node.call(s, "GET", "pub:1")
    assert node.call(s, "DEL", "pub:1") == Error(
        "NOPERM this user has no permissions to run the 'del' command"
    )
    assert node.call(s, "EXEC") == Error(
        "EXECABORT Transaction discarded because of previous errors."
    )
    assert node.call(s, "GET", "pub:1") == b"hello"
    assert node.keyspace.digest() == before  # nothing changed
    log = _log(node, node.session(1))
    assert [(e[b"reason"], e[b"object"], e[b"context"]) for e in log][:3] == [
        (b"command", b"del", b"multi"),
        (b"command", b"flushall", b"toplevel"),
        (b"command", b"acl|setuser", b"toplevel"),
    ]
    assert (b"key", b"secret", b"toplevel") in [
        (e[b"reason"], e[b"object"], e[b"context"]) for e in log
    ]


def test_read_only_and_write_only_patterns(node: Node) -> None:
    admin = node.session(1)
    rules = ["on", "nopass", "%R~src:*", "%W~dst:*", "+@all"]
    assert node.call(admin, "ACL", "SETUSER", "mover", *rules) == OK
    s = node.session(3)
    assert node.call(s, "AUTH", "mover", "any") == OK
    assert node.call(s, "RPUSH", "src:l", "a") == Error(
        "NOPERM this user has no permissions to access one of the keys used as arguments"
    )
    node.call(admin, "RPUSH", "src:l", "a")
    # LMOVE's source is read and written (access + delete): a read-only pattern is not enough
    assert node.call(s, "LMOVE", "src:l", "dst:l", "LEFT", "RIGHT") == Error(
        "NOPERM this user has no permissions to access one of the keys used as arguments"
    )
    assert node.call(s, "LRANGE", "src:l", "0", "-1") == [b"a"]
    assert node.call(s, "SET", "dst:x", "1") == OK


def test_requirepass_is_the_default_users_password() -> None:
    node = Node(requirepass=b"topsecret")
    s = node.session(1)
    assert node.call(s, "GET", "k") == Error("NOAUTH Authentication required.")
    assert node.call(s, "AUTH", "wrong") == Error(
        "WRONGPASS invalid username-password pair or user is disabled."
    )
    assert node.call(s, "AUTH", "topsecret") == OK
    assert node.call(s, "ACL", "SETUSER", "app", "on", ">apw", "~*", "+get") == OK
    # creating another user does not open the default user
    other = node.session(2)
    assert node.call(other, "GET", "k") == Error("NOAUTH Authentication required.")
    assert node.call(other, "AUTH", "default", "topsecret") == OK
    third = node.session(3)
    assert node.call(third, "AUTH", "app", "apw") == OK
    assert node.call(third, "GET", "k") is None
    # once ACL sets the default user, its ACL password rules
    assert node.call(s, "ACL", "SETUSER", "default", "resetpass", ">newpw") == OK
    fourth = node.session(4)
    assert node.call(fourth, "AUTH", "topsecret") == Error(
        "WRONGPASS invalid username-password pair or user is disabled."
    )
    assert node.call(fourth, "AUTH", "newpw") == OK


def test_permissions_follow_changes_and_deleted_users_are_disconnected(node: Node) -> None:
    admin = node.session(1)
    s = node.session(2)
    assert node.call(s, "AUTH", "reader", "rpw") == OK
    assert node.call(s, "GET", "secret") != b"s"
    assert node.call(admin, "ACL", "SETUSER", "reader", "allkeys") == OK
    assert node.call(s, "GET", "secret") == b"s"
    assert node.call(admin, "ACL", "DELUSER", "reader") == 1
    reply = node.call(s, "GET", "secret")
    assert reply == Error("NOAUTH Authentication required.") and s.should_close


def test_users_are_replicated_ops_and_travel_in_snapshots(node: Node) -> None:
    admin = node.session(1)
    node.call(admin, "ACL", "SETUSER", "sel", "on", ">x", "(~a* +get)", "(+@hash", "%W~h*)")
    assert all(op.argv[0] == b"aspen.aclop" for op in node.ops if op.argv[0].lower() != b"set")
    # a replica applying the same ops reaches the same users and the same digest
    replica = Keyspace()
    for i, op in enumerate(node.ops):
        replica.execute(op, NOW, i)
    assert replica.acl.dump() == node.keyspace.acl.dump()
    assert replica.digest() == node.keyspace.digest()
    # a snapshot carries them; a restored node logs them in with the same permissions
    restored = Node(keyspace=Keyspace.restore(node.keyspace.snapshot()))
    assert restored.keyspace.digest() == node.keyspace.digest()
    s = restored.session(5)
    assert restored.call(s, "AUTH", "sel", "x") == OK
    assert restored.call(s, "GET", "a1") is None
    assert restored.call(s, "HSET", "h1", "f", "v") == 1
    assert restored.call(s, "GET", "b1") == Error(
        "NOPERM this user has no permissions to access one of the keys used as arguments"
    )
    # a keyspace that never saw ACL snapshots exactly as before (no "acl" entry)
    assert b"acl" not in Keyspace().snapshot()


def test_the_default_user_keeps_the_fast_path() -> None:
    node = Node()
    s = node.session(1)
    assert node.call(s, "SET", "k", "v") == OK
    assert not s._restricted and not s._gate
    node.call(s, "ACL", "SETUSER", "other", "on")
    node.call(s, "GET", "k")
    assert not s._restricted and not s._gate


def test_acl_load_is_replicated_and_checked_first(tmp_path: Path) -> None:
    path = tmp_path / "users.acl"
    node = Node()
    node.ctx.settings[b"aclfile"] = str(path).encode()
    admin = node.session(1)
    path.write_text("user app on >pw ~app:* +get\nuser bad on (~x +get\n")
    reply = node.call(admin, "ACL", "LOAD")
    assert reply == Error(
        f"ERR {path}:2: Unmatched parenthesis in selector definition.WARNING: ACL errors "
        "detected, no change to the previously active ACL rules was performed"
    )
    assert sorted(node.keyspace.acl.users) == [b"default"]
    path.write_text("user app on >pw ~app:* +get\n")
    assert node.call(admin, "ACL", "LOAD") == OK
    load_op = node.ops[-1]
    assert load_op.argv[:2] == [b"aspen.aclop", b"load"]
    replica = Keyspace()
    replica.execute(load_op, NOW, 0)
    assert replica.acl.dump() == node.keyspace.acl.dump()
    assert sorted(replica.acl.users) == [b"app", b"default"]
    path.unlink()
    assert node.call(admin, "ACL", "SAVE") == OK
    assert path.read_text().splitlines() == [
        "user app on #" + hashlib.sha256(b"pw").hexdigest() + " ~app:* resetchannels -@all +get",
        "user default on nopass ~* &* +@all",
    ]
