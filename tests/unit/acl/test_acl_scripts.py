"""A restricted user's scripts: each redis.call is checked against the user's rules, with
Redis 7.0.15's texts (checked by hand against redis-server), logged with context "lua", and a
refused call changes nothing; unrestricted users' scripts are not wrapped."""

from __future__ import annotations

from test_acl_session import Node

from aspen.kv.ops import WriteOp
from aspen.resp.values import OK, Error

CMD = "ERR The user executing the script can't run this command or subcommand"
KEY = ("ERR The user executing the script can't access at least one of the keys mentioned in "
       "the command arguments")


def test_redis_call_is_checked_against_the_scripts_user() -> None:
    node = Node()
    admin = node.session(1)
    assert node.call(admin, "ACL", "SETUSER", "u", "on", ">p", "~k*", "+@scripting", "+get") == OK
    assert node.call(admin, "SET", "k1", "v1") == OK
    assert node.call(admin, "SET", "other", "secret") == OK
    u = node.session(2)
    assert node.call(u, "AUTH", "u", "p") == OK
    assert node.call(u, "EVAL", "return redis.call('get', 'k1')", "0") == b"v1"
    refused = node.call(u, "EVAL", "return redis.call('set', 'k1', 'x')", "0")
    assert isinstance(refused, Error) and refused.message.startswith(CMD + " script: ")
    refused = node.call(u, "EVAL", "return redis.call('get', 'other')", "0")
    assert isinstance(refused, Error) and refused.message.startswith(KEY + " script: ")
    # pcall hands the refusal to the script as an error table
    assert node.call(u, "EVAL", "return redis.pcall('set', 'k1', 'x')", "0") == Error(CMD)
    refused = node.call(u, "EVAL_RO", "return redis.call('get', 'other')", "0")
    assert isinstance(refused, Error) and refused.message.startswith(KEY)
    assert node.call(admin, "GET", "k1") == b"v1"  # nothing changed
    log = node.call(admin, "ACL", "LOG")
    assert isinstance(log, list)
    entries = [dict(e.items) for e in log]
    assert (entries[0][b"context"], entries[0][b"reason"]) == (b"lua", b"key")
    assert {(e[b"reason"], e[b"object"]) for e in entries} >= {(b"command", b"set"),
                                                                (b"key", b"other")}
    # the user travels in the log entry; an admin's script is not wrapped
    scripted = [op for op in node.ops if op.argv[0] == b"aspen.scriptas"]
    assert scripted and all(op.argv[1] == b"u" for op in scripted)
    assert node.call(admin, "EVAL", "return redis.call('set', 'k1', 'admin')", "0") == OK
    assert isinstance(node.ops[-1], WriteOp) and node.ops[-1].argv[0] == b"EVAL"


def test_a_restricted_script_inside_multi_is_checked_too() -> None:
    node = Node()
    admin = node.session(1)
    assert node.call(admin, "ACL", "SETUSER", "u", "on", ">p", "~k*", "+@scripting",
                     "+@transaction", "+get") == OK
    u = node.session(2)
    assert node.call(u, "AUTH", "u", "p") == OK
    assert node.call(u, "MULTI") == OK
    node.call(u, "EVAL", "return redis.call('set', 'k1', 'x')", "0")
    replies = node.call(u, "EXEC")
    assert isinstance(replies, list) and isinstance(replies[0], Error)
    assert replies[0].message.startswith(CMD)
    assert node.call(admin, "EXISTS", "k1") == 0
