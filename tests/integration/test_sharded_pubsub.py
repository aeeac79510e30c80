"""Sharded pub/sub (SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH, PUBSUB SHARDCHANNELS/SHARDNUMSUB)
against a real redis-server 7.0.15, and across a three-node cluster (one Raft group serves
every shard channel: an SPUBLISH on one node reaches SSUBSCRIBErs on the others)."""

from __future__ import annotations

import time

import pytest
import redis
from vs_redis import clients

from harness.daemons import DaemonCluster

pytestmark = [pytest.mark.slow, pytest.mark.differential]


SCRIPT: list[tuple[str, list[bytes], int]] = [
    # (who, command, how many replies to read)
    ("sub", [b"SSUBSCRIBE", b"a", b"b", b"a"], 3),
    ("sub", [b"SUBSCRIBE", b"a"], 1),
    ("sub", [b"GET", b"x"], 1),  # refused: the RESP2 subscribed context
    ("pub", [b"PUBSUB", b"SHARDCHANNELS"], 1),
    ("pub", [b"PUBSUB", b"SHARDCHANNELS", b"a*"], 1),
    ("pub", [b"PUBSUB", b"SHARDNUMSUB", b"a", b"b", b"c"], 1),
    ("pub", [b"PUBSUB", b"NUMSUB", b"a"], 1),
    ("pub", [b"PUBSUB", b"CHANNELS"], 1),
    ("pub", [b"SPUBLISH", b"a", b"hello"], 1),
    ("sub", [], 1),  # the smessage
    ("pub", [b"PUBLISH", b"a", b"plain"], 1),
    ("sub", [], 1),  # the (not shard) message
    ("pub", [b"SPUBLISH", b"zzz", b"nobody"], 1),
    ("sub", [b"SUNSUBSCRIBE", b"a", b"nope"], 2),
    ("sub", [b"SUNSUBSCRIBE"], 1),
    ("sub", [b"SUNSUBSCRIBE"], 1),
    ("sub", [b"UNSUBSCRIBE"], 1),
    ("sub", [b"PING"], 1),
    ("pub", [b"MULTI"], 1), ("pub", [b"SSUBSCRIBE", b"m"], 1), ("pub", [b"EXEC"], 1),
    ("pub", [b"SPUBLISH", b"a"], 1), ("pub", [b"SSUBSCRIBE"], 1),
    ("pub", [b"PUBSUB", b"SHARDCHANNELS", b"a", b"b"], 1),
    ("pub", [b"COMMAND", b"GETKEYS", b"SSUBSCRIBE", b"a", b"b"], 1),
]


def run_script(port: int) -> list[object]:
    out: list[object] = []
    with clients(port, port) as (sub, pub):
        for who, cmd, n in SCRIPT:
            c = sub if who == "sub" else pub
            if cmd:
                c.send(cmd)
            for _ in range(n):
                reply = c.read()
                if cmd[:2] in ([b"PUBSUB", b"SHARDCHANNELS"], [b"PUBSUB", b"CHANNELS"]) \
                        and isinstance(reply, list):
                    reply = sorted(reply)  # (Redis answers in hash order)
                out.append(reply)
    return out


def test_replies_match_redis(redis_port: int, aspen_port: int) -> None:
    assert run_script(aspen_port) == run_script(redis_port)


def test_shard_messages_cross_the_cluster(cluster: DaemonCluster) -> None:
    leader = cluster.wait_leader()
    others = [i for i in cluster.voters if i != leader]
    subs = []
    for i in others:
        r = redis.Redis(port=cluster.resp_port(i))
        p = r.pubsub()
        p.ssubscribe("orders")
        assert p.get_message(timeout=5)["type"] == "ssubscribe"  # type: ignore[index]
        subs.append((r, p))
    try:
        time.sleep(0.2)
        assert cluster.client(leader).execute_command("SPUBLISH", "orders", "o1") == 0
        for _, p in subs:
            msg = None
            deadline = time.monotonic() + 10
            while msg is None and time.monotonic() < deadline:
                msg = p.get_message(timeout=1)
            assert msg is not None
            assert (msg["type"], msg["channel"], msg["data"]) == ("smessage", b"orders", b"o1")
        # a plain PUBLISH on the same name does not reach shard subscribers
        cluster.client(leader).publish("orders", "plain")
        for _, p in subs:
            assert p.get_message(timeout=0.5) is None
    finally:
        for r, p in subs:
            p.close()
            r.close()


def test_acl_channels_not_keys(aspen_port: int) -> None:
    """A user limited to some keys may still SSUBSCRIBE/SPUBLISH allowed channels (shard
    channels are not keys), and not others."""
    with clients(aspen_port, aspen_port) as (admin, user):
        assert admin.call([b"ACL", b"SETUSER", b"shard", b"on", b">pw", b"~k*",
                           b"&news*", b"+@all"]) == "OK"
        try:
            assert user.call([b"AUTH", b"shard", b"pw"]) == "OK"
            assert user.call([b"SPUBLISH", b"news1", b"x"]) == 0
            got = user.call([b"SPUBLISH", b"other", b"x"])
            assert got == ("NOPERM this user has no permissions to access one of the channels "
                           "used as arguments")  # (redis-server's answer)
            assert user.call([b"SSUBSCRIBE", b"news2"]) == [b"ssubscribe", b"news2", 1]
        finally:
            admin.call([b"ACL", b"DELUSER", b"shard"])
