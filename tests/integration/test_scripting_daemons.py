"""Scripts and functions on a real three-node cluster (`aspen node` daemons over ZeroMQ).

The script cache and the function libraries are replicated state: SCRIPT LOAD / FUNCTION LOAD
on one node makes EVALSHA / FCALL work on every node, after a leader kill, after a restart and
after a snapshot install; EVAL sent to a follower is forwarded like any write; scripts compose
with MULTI/EXEC and WATCH; a script near its instruction budget does not cost the leader its
leadership.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
import redis

from harness.daemons import DaemonCluster, wait_until

INCR_BY = (
    "local v = redis.call('incrby', KEYS[1], ARGV[1])\n"
    "redis.call('set', KEYS[2], tostring(v))\n"
    "return v"
)
SHA = hashlib.sha1(INCR_BY.encode()).hexdigest()
GET = "return redis.call('get', KEYS[1])"
GET_SHA = hashlib.sha1(GET.encode()).hexdigest()
LIB = (
    "#!lua name=counters\n"
    "redis.register_function('bump', function(keys, args) "
    "return redis.call('incr', keys[1]) end)\n"
    "redis.register_function{function_name='peek', callback=function(keys) "
    "return redis.call('get', keys[1]) end, flags={'no-writes'}}\n"
)


def _followers(cluster: DaemonCluster, leader: int) -> list[int]:
    return [i for i in cluster.voters if i != leader]


def test_script_cache_and_functions_are_replicated(cluster: DaemonCluster) -> None:
    leader = cluster.wait_leader()
    f1, f2 = _followers(cluster, leader)
    assert cluster.client(leader).script_load(INCR_BY) == SHA
    assert cluster.client(f1).script_load(GET) == GET_SHA
    # EVALSHA sent to each follower: forwarded to the leader, run by every replica
    for n, node in enumerate((f1, f2, leader), start=1):
        assert cluster.client(node).evalsha(SHA, 2, "c", "copy", 5) == 5 * n
    for node in cluster.voters:
        c = cluster.client(node)
        assert c.script_exists(SHA) == [True]
        # read-only forms are served by the node itself (linearizable read)
        assert c.eval_ro("return redis.call('get', KEYS[1])", 1, "copy") == b"15"
        assert c.evalsha_ro(GET_SHA, 1, "copy") == b"15"  # loaded through the log
        assert c.get("c") == b"15"
    # EVAL sent to a follower is a replicated write like any other
    assert cluster.client(f1).eval("return redis.call('set', KEYS[1], ARGV[1])", 1, "e", "v")
    for node in cluster.voters:
        assert cluster.client(node).get("e") == b"v"
    # functions: loaded on a follower, called everywhere
    assert cluster.client(f2).function_load(LIB) == b"counters"
    for node in cluster.voters:
        c = cluster.client(node)
        before = int(c.get("fn") or 0)
        assert c.fcall("bump", 1, "fn") == before + 1
        assert c.fcall_ro("peek", 1, "fn") == str(before + 1).encode()
    with pytest.raises(redis.ResponseError, match="write flag"):
        cluster.client(f1).fcall_ro("bump", 1, "fn")


def test_evalsha_after_a_leader_kill_and_a_restart(cluster: DaemonCluster) -> None:
    leader = cluster.wait_leader()
    cluster.client(leader).script_load(INCR_BY)
    cluster.client(leader).function_load(LIB)
    cluster.kill(leader)
    new = cluster.wait_leader(among=_followers(cluster, leader))
    assert cluster.client(new).evalsha(SHA, 2, "k", "kc", 2) == 2
    assert cluster.client(new).fcall("bump", 1, "n") == 1
    cluster.start(leader)  # replays its log (or its snapshot) into a fresh keyspace
    c = cluster.client(leader)
    wait_until("the restarted node to catch up", lambda: c.get("k") == b"2" or None, 20)
    assert c.evalsha(SHA, 2, "k", "kc", 3) == 5
    assert c.fcall("bump", 1, "n") == 2


def test_script_cache_survives_a_snapshot_install(tmp_path: Path) -> None:
    with DaemonCluster(3, tmp_path, raft={"snapshot_entries": 20}) as cluster:
        cluster.start_all()
        leader = cluster.wait_leader()
        lagging = _followers(cluster, leader)[0]
        cluster.client(leader).script_load(INCR_BY)
        cluster.client(leader).function_load(LIB)
        cluster.kill(lagging)
        c = cluster.client(leader)
        for i in range(300):  # many snapshots past what the lagging node has
            c.set(f"fill{i}", i)
        cluster.start(lagging)
        lc = cluster.client(lagging)
        wait_until("the lagging node to catch up", lambda: lc.get("fill299") == b"299" or None,
                   30)
        # served by the lagging node's own keyspace, restored from a snapshot
        assert lc.script_exists(SHA) == [True]
        assert lc.fcall_ro("peek", 1, "fill7") == b"7"
        assert lc.evalsha(SHA, 2, "x", "xc", 4) == 4


def test_scripts_in_multi_exec_and_under_watch(cluster: DaemonCluster) -> None:
    leader = cluster.wait_leader()
    follower = _followers(cluster, leader)[0]
    c = cluster.client(follower)
    with c.pipeline(transaction=True) as p:
        p.set("m", 1)
        p.eval("return redis.call('incr', KEYS[1])", 1, "m")
        p.eval_ro("return redis.call('get', KEYS[1])", 1, "m")
        assert p.execute() == [True, 2, b"2"]
    # WATCH around EVAL: a script that changed the watched key aborts the transaction
    with c.pipeline(transaction=True) as p:
        p.watch("w")
        cluster.client(leader).eval("return redis.call('set', KEYS[1], 'x')", 1, "w")
        p.multi()
        p.set("w", "mine")
        with pytest.raises(redis.WatchError):
            p.execute()
    assert c.get("w") == b"x"


def test_a_long_script_keeps_the_leader(cluster: DaemonCluster) -> None:
    """A script that spends its whole instruction budget blocks every replica's event loop
    for that long: measure it and check no election happened (the leader kept its term)."""
    leader = cluster.wait_leader()
    term = cluster.status(leader)["term"]
    c = cluster.client(leader)
    c.set("before", 1)
    for script in (
        "redis.call('set', KEYS[1], 'written') local i = 0 while true do i = i + 1 end",
        "local i = 0 while true do i = i + 1 redis.call('set', KEYS[1], i) end",
    ):
        start = time.monotonic()
        with pytest.raises(redis.ResponseError, match="budget of Lua instructions"):
            c.eval(script, 1, "runaway")
        took = time.monotonic() - start
        print(f"a script that ran out of its budget took {took:.3f} s end to end: {script}")
        assert c.get("runaway") is None  # its writes were undone, on every replica
        for node in cluster.voters:
            assert cluster.client(node).get("runaway") is None
    time.sleep(1.0)
    assert cluster.leader() == leader
    assert cluster.status(leader)["term"] == term


def test_a_long_read_only_script_on_the_leader_keeps_it(cluster: DaemonCluster) -> None:
    """A read-only script runs in a worker thread, without a budget, until SCRIPT KILL: for 3 s
    on the leader its Raft keeps going (no election; writes through a follower commit), a
    command of another client waits for it (below the 5 s busy threshold) and is answered
    normally once it was killed. Prints the leader's event-loop gaps (its HTTP /status polled)
    and the follower writes' latency meanwhile."""
    import threading

    leader = cluster.wait_leader()
    follower = _followers(cluster, leader)[0]
    term = cluster.status(leader)["term"]
    cluster.client(leader).set("k", "v")
    writes = cluster.client(follower)

    def write_for(seconds: float, key: str) -> list[float]:
        out: list[float] = []
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            t = time.monotonic()
            writes.incr(key)
            out.append(time.monotonic() - t)
            time.sleep(0.02)
        return out

    baseline = write_for(1.0, "baseline")  # the same writes without a script, for comparison
    spinner = cluster.client(leader, socket_timeout=30)
    box: list[object] = []

    def spin() -> None:
        try:
            box.append(spinner.eval_ro("while true do end", 0))
        except redis.ResponseError as exc:
            box.append(str(exc))

    runner = threading.Thread(target=spin, daemon=True)
    runner.start()
    waiting: list[object] = []
    waiter = threading.Thread(target=lambda: waiting.append(
        cluster.client(leader, socket_timeout=30).get("k")), daemon=True)
    time.sleep(0.2)
    waiter.start()
    latencies: list[float] = []
    status_latencies: list[float] = []
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < 3.0:
        t = time.monotonic()
        n += 1
        assert writes.incr("during") == n
        latencies.append(time.monotonic() - t)
        t = time.monotonic()
        assert cluster.status(leader)["term"] == term
        status_latencies.append(time.monotonic() - t)
    assert not box and not waiting  # the script runs; the other client's GET waits
    killed_at = time.monotonic()
    assert cluster.client(leader).script_kill()
    runner.join(5)
    took = time.monotonic() - killed_at
    waiter.join(5)
    assert box and "Script killed by user with SCRIPT KILL..." in str(box[0])
    assert waiting == [b"v"]
    assert cluster.client(leader).get("during") == str(n).encode()
    assert cluster.leader() == leader and cluster.status(leader)["term"] == term
    median = sorted(latencies)[len(latencies) // 2]
    base_median = sorted(baseline)[len(baseline) // 2]
    print(f"3 s read-only script on the leader: {n} writes through a follower, latency max "
          f"{max(latencies) * 1000:.1f} ms, median {median * 1000:.1f} ms (without a script: "
          f"max {max(baseline) * 1000:.1f} ms, median {base_median * 1000:.1f} ms); the "
          f"leader's HTTP /status answered within {max(status_latencies) * 1000:.1f} ms; "
          f"SCRIPT KILL ended it in {took * 1000:.1f} ms; term unchanged")
