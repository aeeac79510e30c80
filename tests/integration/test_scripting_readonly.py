"""Read-only scripts served by one node (in-process three-node clusters, real clock).

EVAL_RO / EVALSHA_RO / FCALL_RO and EVAL / FCALL of `no-writes` scripts are reads: served at
the connection's read consistency without a log entry. They run in a worker thread with no
instruction budget: other clients get BUSY after `busy_reply_threshold`, SCRIPT KILL /
FUNCTION KILL stop them, and the node's Raft keeps going meanwhile (no election).
"""

from __future__ import annotations

import time

import pytest
import trio

from aspen.cluster import ClusterNode
from aspen.raft import Role
from aspen.resp.values import OK, Error, Map
from harness.cluster import Client, InProcessCluster, open_cluster
from transports.base import Message

SPIN = "while true do end"
KILLED = "ERR Script killed by user with SCRIPT KILL..."
BUSY_EVAL = ("BUSY Redis is busy running a script. You can only call SCRIPT KILL or "
             "SHUTDOWN NOSAVE.")
BUSY_FUNCTION = ("BUSY Redis is busy running a script. You can only call FUNCTION KILL or "
                 "SHUTDOWN NOSAVE.")
LIB = (
    "#!lua name=spinlib\n"
    "redis.register_function{function_name='spin', callback=function() while true do end end,"
    " flags={'no-writes'}}\n"
    "redis.register_function{function_name='peek', callback=function(keys) "
    "return redis.call('get', keys[1]) end, flags={'no-writes'}}\n"
    "redis.register_function('bump', function(keys) return redis.call('incr', keys[1]) end)\n"
)


def _text(reply: object) -> str:
    assert isinstance(reply, Error), reply
    return reply.message


async def _leader(cluster: InProcessCluster) -> ClusterNode:
    return await cluster.wait_leader()


def _follower(cluster: InProcessCluster, leader: ClusterNode) -> ClusterNode:
    return next(n for n in cluster.running() if n.id != leader.id)


async def test_read_only_scripts_on_a_follower_are_linearizable_and_not_logged() -> None:
    async with open_cluster(3, seed=3, request_timeout=5.0) as cluster:
        leader = await _leader(cluster)
        follower = _follower(cluster, leader)
        lc, fc = cluster.client(leader.id), cluster.client(follower.id)
        assert await lc.cmd("FUNCTION", "LOAD", LIB) == b"spinlib"
        sha = await fc.cmd("SCRIPT", "LOAD",
                           "#!lua flags=no-writes\nreturn redis.call('get', KEYS[1])")
        await cluster.wait_converged()
        for i in range(5):
            # acknowledged on the leader, then read at once on a follower: seen every time
            assert await lc.cmd("SET", "k", str(i)) == OK
            last = leader.core.last_index if leader.core else 0
            proposed = leader.stats.entries_proposed
            got = [
                await fc.cmd("EVAL_RO", "return redis.call('get', KEYS[1])", 1, "k"),
                await fc.cmd("EVAL", "#!lua flags=no-writes\nreturn redis.call('get', KEYS[1])",
                             1, "k"),
                await fc.cmd("EVALSHA", sha, 1, "k"),
                await fc.cmd("EVALSHA_RO", sha, 1, "k"),
                await fc.cmd("FCALL_RO", "peek", 1, "k"),
                await fc.cmd("FCALL", "peek", 1, "k"),
            ]
            assert got == [str(i).encode()] * 6
            # no log entry for any of them (a ReadIndex round is no entry)
            assert leader.stats.entries_proposed == proposed
            assert leader.core is not None and leader.core.last_index == last
        # a write from such a script is refused, with Redis's text, and nothing is logged
        for argv in (
            ("EVAL_RO", "return redis.call('set', KEYS[1], 'x')", 1, "k"),
            ("EVAL", "#!lua flags=no-writes\nreturn redis.call('set', KEYS[1], 'x')", 1, "k"),
        ):
            assert _text(await fc.cmd(*argv)).startswith(
                "ERR Write commands are not allowed from read-only scripts.")
        assert _text(await fc.cmd("FCALL_RO", "bump", 1, "k")) == (
            "ERR Can not execute a script with write flag using *_ro command.")
        assert leader.stats.entries_proposed == proposed
        assert await fc.cmd("GET", "k") == b"4"
        # a script without the flag still goes through the log (it may write)
        assert await fc.cmd("FCALL", "bump", 1, "k") == 5
        assert leader.stats.entries_proposed > proposed


async def _spin_in_background(client: Client, nursery: trio.Nursery, *argv: object
                              ) -> tuple[list[object], list[float]]:
    box: list[object] = []
    ended: list[float] = []

    async def go() -> None:
        box.append(await client.cmd(*argv))  # type: ignore[arg-type]
        ended.append(trio.current_time())

    nursery.start_soon(go)
    return box, ended


async def _until_running(node: ClusterNode) -> None:
    with trio.fail_after(5):
        while node.scripts.running is None:
            await trio.sleep(0.005)


async def test_script_kill_busy_and_normal_answers_after() -> None:
    async with open_cluster(3, seed=5, busy_reply_threshold=0.3) as cluster:
        leader = await _leader(cluster)
        a, b = cluster.client(leader.id), cluster.client(leader.id)
        assert await b.cmd("SET", "k", "v") == OK
        assert await b.cmd("SCRIPT", "KILL") == Error("NOTBUSY No scripts in execution right now.")
        async with trio.open_nursery() as nursery:
            box, ended = await _spin_in_background(a, nursery, "EVAL_RO", SPIN, 0)
            await _until_running(leader)
            started = trio.current_time()
            # before the threshold a command waits; then it gets BUSY
            reply = await b.cmd("GET", "k")
            waited = trio.current_time() - started
            assert _text(reply) == BUSY_EVAL
            assert 0.2 <= waited < 2.0
            assert _text(await b.cmd("PING")) == BUSY_EVAL
            assert _text(await b.cmd("SET", "k", "w")) == BUSY_EVAL  # not submitted
            assert _text(await b.cmd("FUNCTION", "KILL")) == BUSY_EVAL
            assert _text(await b.cmd("FUNCTION", "STATS")) == BUSY_EVAL
            assert not box
            kill_at = trio.current_time()
            assert await b.cmd("SCRIPT", "KILL") == OK
        assert box[0] == Error(KILLED + " script: " + _sha(SPIN) + ", on @user_script:1.")
        took = ended[0] - kill_at
        print(f"SCRIPT KILL ended the script in {took * 1000:.1f} ms")
        assert took < 1.0
        assert await b.cmd("GET", "k") == b"v"
        assert await b.cmd("SET", "k", "after") == OK
        assert await a.cmd("GET", "k") == b"after"
        assert await b.cmd("SCRIPT", "KILL") == Error("NOTBUSY No scripts in execution right now.")
        assert leader.scripts.stats.scripts_killed == 1


def _sha(body: str) -> str:
    import hashlib

    return hashlib.sha1(body.encode()).hexdigest()


async def test_function_kill_and_stats() -> None:
    async with open_cluster(3, seed=6, busy_reply_threshold=0.2) as cluster:
        leader = await _leader(cluster)
        follower = _follower(cluster, leader)
        a, b = cluster.client(follower.id), cluster.client(follower.id)
        assert await a.cmd("FUNCTION", "LOAD", LIB) == b"spinlib"
        await cluster.wait_converged()
        async with trio.open_nursery() as nursery:
            box, _ = await _spin_in_background(a, nursery, "FCALL", "spin", 0)
            await _until_running(follower)
            await trio.sleep(0.3)
            stats = await b.cmd("FUNCTION", "STATS")
            assert isinstance(stats, Map)
            running = dict(stats.items)[b"running_script"]
            assert isinstance(running, Map)
            fields = dict(running.items)
            assert fields[b"name"] == b"spin" and fields[b"command"] == [b"FCALL", b"spin", b"0"]
            assert isinstance(fields[b"duration_ms"], int) and fields[b"duration_ms"] >= 200
            assert _text(await b.cmd("GET", "x")) == BUSY_FUNCTION
            assert _text(await b.cmd("SCRIPT", "KILL")) == BUSY_FUNCTION
            assert await b.cmd("FUNCTION", "KILL") == OK
        assert box[0] == Error(KILLED + " script: spin, on @user_function:2.")
        stats = await b.cmd("FUNCTION", "STATS")
        assert isinstance(stats, Map) and dict(stats.items)[b"running_script"] is None


async def test_writes_elsewhere_go_on_during_a_long_read_only_script() -> None:
    """A 3 s read-only script on the leader: its Raft keeps going (no election, writes through
    a follower commit), its own apply waits for the script, other clients get BUSY. Prints the
    longest gap between the leader's messages seen by each follower (figures, not a test:
    docs/benchmarks.md)."""
    async with open_cluster(3, seed=7, busy_reply_threshold=0.5, request_timeout=6.0) as cluster:
        leader = await _leader(cluster)
        term = leader.core.term if leader.core else 0
        followers = [n for n in cluster.running() if n.id != leader.id]
        gaps = {f.id: _HeartbeatGaps(f, leader.id) for f in followers}
        a, b = cluster.client(leader.id), cluster.client(leader.id)
        writer = cluster.client(followers[0].id)
        # the same measure for 3 s without a script first: the machine's own noise
        for g in gaps.values():
            g.start()
        await trio.sleep(3.0)
        for g in gaps.values():
            g.stop()
        baseline = max(g.worst() for g in gaps.values())
        write_latency: list[float] = []
        async with trio.open_nursery() as nursery:
            box, _ = await _spin_in_background(a, nursery, "EVAL_RO", SPIN, 0)
            await _until_running(leader)
            for g in gaps.values():
                g.start()
            t0 = trio.current_time()
            busy = 0
            while trio.current_time() - t0 < 3.0:
                s = time.perf_counter()
                assert await writer.cmd("INCR", "n") == len(write_latency) + 1
                write_latency.append(time.perf_counter() - s)
                if trio.current_time() - t0 > 0.6 and busy < 3:
                    assert _text(await b.cmd("GET", "n")) == BUSY_EVAL
                    busy += 1
                await trio.sleep(0.02)
            for g in gaps.values():
                g.stop()
            held_applied = leader.state.applied_index
            assert leader.core is not None and leader.core.commit_index > held_applied
            assert await b.cmd("SCRIPT", "KILL") == OK
        assert _text(box[0]).startswith(KILLED)
        assert leader.core is not None and leader.core.term == term
        assert leader.core.role is Role.LEADER
        assert all(f.core is not None and f.core.term == term for f in followers)
        assert await b.cmd("GET", "n") == str(len(write_latency)).encode()
        worst = {i: g.worst() for i, g in gaps.items()}
        print(f"heartbeat gap during a 3 s read-only script on the leader (ms): "
              f"{ {i: round(w * 1000, 1) for i, w in worst.items()} } (without a script: "
              f"{baseline * 1000:.1f}); "
              f"election timeout {leader.settings.election_timeout * 1000:.0f} ms; "
              f"{len(write_latency)} writes through a follower meanwhile, max latency "
              f"{max(write_latency) * 1000:.1f} ms; entries deferred "
              f"{leader.scripts.stats.entries_deferred}")


class _HeartbeatGaps:
    """Times at which a follower receives Raft messages from the leader."""

    def __init__(self, node: ClusterNode, leader: int) -> None:
        self.times: list[float] = []
        self._on = False
        transport = node.transport
        assert transport is not None
        inner = transport.sink
        assert inner is not None

        def sink(message: Message) -> None:
            if self._on and message.sender == leader:
                self.times.append(time.perf_counter())
            inner(message)

        transport.sink = sink

    def start(self) -> None:
        self.times = [time.perf_counter()]
        self._on = True

    def stop(self) -> None:
        self._on = False
        self.times.append(time.perf_counter())

    def worst(self) -> float:
        return max(b - a for a, b in zip(self.times, self.times[1:], strict=False))


@pytest.mark.parametrize("consistency", ["lease", "stale"])
async def test_other_consistencies(consistency: str) -> None:
    async with open_cluster(3, seed=8) as cluster:
        leader = await _leader(cluster)
        assert await cluster.client(leader.id).cmd("SET", "k", "v") == OK
        await cluster.wait_converged()
        for node in cluster.running():
            c = cluster.client(node.id)
            assert await c.cmd("ASPEN.CONSISTENCY", consistency) == OK
            assert await c.cmd("EVAL_RO", "return redis.call('get', KEYS[1])", 1, "k") == b"v"
            assert await c.cmd("FCALL_RO", "nosuch", 0) == Error("ERR Function not found")


async def test_a_restricted_users_no_writes_script_is_a_read_checked_as_that_user() -> None:
    async with open_cluster(3, seed=9) as cluster:
        leader = await _leader(cluster)
        follower = _follower(cluster, leader)
        admin = cluster.client(leader.id)
        assert await admin.cmd("ACL", "SETUSER", "u", "on", ">pw", "~*", "+@all", "-get") == OK
        assert await admin.cmd("SET", "k", "v") == OK
        await cluster.wait_converged()
        c = cluster.client(follower.id)
        assert await c.cmd("AUTH", "u", "pw") == OK
        proposed = leader.stats.entries_proposed
        body = "#!lua flags=no-writes\nreturn redis.call('%s', KEYS[1])"
        assert await c.cmd("EVAL", body % "strlen", 1, "k") == 1
        assert _text(await c.cmd("EVAL", body % "get", 1, "k")).startswith(
            "ERR The user executing the script can't run this command or subcommand")
        assert _text(await c.cmd("EVAL", body % "del", 1, "k")).startswith(
            "ERR Write commands are not allowed from read-only scripts.")
        assert leader.stats.entries_proposed == proposed  # all three were reads
        assert await c.cmd("EVAL", "return redis.call('del', KEYS[1])", 1, "k") == 1
        assert leader.stats.entries_proposed > proposed
