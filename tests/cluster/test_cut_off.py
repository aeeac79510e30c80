"""Fail fast when cut off: a node that has known no leader for two election timeouts answers
at once (CLUSTERDOWN, nothing applied), and a client whose write was forwarded into the void
learns that its outcome is unknown then, not at the request deadline."""

from __future__ import annotations

import trio

from aspen.cluster.errors import CLUSTERDOWN, WRITE_OUTCOME_UNKNOWN
from aspen.resp.values import OK
from harness.cluster import InProcessCluster


async def test_an_isolated_follower_fails_fast_and_applies_nothing(
    cluster3: InProcessCluster, autojump_clock: object
) -> None:
    leader = await cluster3.wait_leader()
    f = next(n.id for n in cluster3.running() if n.id != leader.id)
    node = cluster3.nodes[f]
    settings = node.settings
    cluster3.hub.partition([f], [n.id for n in cluster3.running() if n.id != f])

    # It still believes in the leader: the write is forwarded and lost with the link.
    start = trio.current_time()
    assert await cluster3.client(f).cmd("SET", "forwarded", "1") == WRITE_OUTCOME_UNKNOWN
    took = trio.current_time() - start
    assert took < settings.request_timeout
    assert took <= 2 * settings.election_timeout + 2 * settings.election_timeout + 0.2
    assert node.cut_off

    for args in (("SET", "k", "v"), ("INCR", "n"), ("GET", "k"), ("MGET", "k", "n")):
        start = trio.current_time()
        assert await cluster3.client(f).cmd(*args) == CLUSTERDOWN
        assert trio.current_time() - start < settings.tick_interval  # at once
    info = dict(node.info_fields())
    assert info["raft_cut_off"] == "1" and int(info["raft_cut_offs"]) >= 1

    # The majority side never noticed.
    assert await cluster3.client(leader.id).cmd("SET", "majority", "1") == OK

    cluster3.hub.heal()
    with trio.fail_after(10):
        while node.leader_id is None or node.cut_off:
            await trio.sleep(0.05)
    assert await cluster3.client(f).cmd("SET", "after", "1") == OK
    await cluster3.wait_converged()
    for n in cluster3.running():  # CLUSTERDOWN meant it: nothing was applied anywhere
        client = cluster3.client(n.id)
        assert await client.cmd("EXISTS", "k", "n") == 0
        assert await client.cmd("MGET", "majority", "after") == [b"1", b"1"]


async def test_an_isolated_leader_steps_down_and_fails_fast(
    cluster3: InProcessCluster, autojump_clock: object
) -> None:
    leader = await cluster3.wait_leader()
    others = [n.id for n in cluster3.running() if n.id != leader.id]
    cluster3.hub.partition([leader.id], others)
    start = trio.current_time()
    # proposed on the old leader, never committed: outcome unknown, well before the deadline
    assert await cluster3.client(leader.id).cmd("SET", "lost", "1") == WRITE_OUTCOME_UNKNOWN
    assert trio.current_time() - start < leader.settings.request_timeout
    assert await cluster3.client(leader.id).cmd("SET", "k", "v") == CLUSTERDOWN
    new = await cluster3.wait_leader(among=others)
    assert await cluster3.client(new.id).cmd("SET", "k2", "v") == OK


async def test_a_normal_failover_does_not_fail_writes(
    cluster3: InProcessCluster, autojump_clock: object
) -> None:
    """The threshold is above an election: writes during one wait for the new leader."""
    for _ in range(3):
        leader = await cluster3.wait_leader()
        others = [n.id for n in cluster3.running() if n.id != leader.id]
        await cluster3.stop(leader.id)
        replies = []
        for f in others:
            replies.append(await cluster3.client(f).cmd("INCR", "n"))
        assert all(isinstance(r, int) for r in replies), replies
        assert not any(cluster3.nodes[f].cut_off for f in others)
        await cluster3.start(leader.id)
        await cluster3.wait_converged()
