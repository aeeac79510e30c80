"""A follower's long apply does not count toward its election timeout (the leader is busy
applying the same entries and sends no heartbeat meanwhile)."""

from __future__ import annotations

import itertools

import trio

from aspen.resp.values import OK
from harness.cluster import InProcessCluster


async def _silent_leader_after_long_apply(cluster: InProcessCluster, credit: bool) -> bool:
    """True if the term stayed (no election) while the leader was silent after a long apply."""
    leader = await cluster.wait_leader()
    followers = [n for n in cluster.running() if n.id != leader.id]
    term = leader.status()["term"]
    for f in followers:  # the next apply "takes" 1 s of real time on every follower
        ticks = itertools.count()
        f.apply_clock = lambda c=ticks: float(next(c))  # each call 1 s later than the last
    assert await cluster.client(leader.id).cmd("SET", "big", "1") == OK
    await trio.sleep(0.01)
    for f in followers:
        f.apply_clock = lambda: 0.0
        if not credit:
            f.tick_credit = 0
    # The leader is "still applying": it neither ticks (its loop is busy) nor sends.
    leader.tick_credit = 19
    for f in followers:
        cluster.hub.block(leader.id, f.id)
    await trio.sleep(0.95)  # longer than an election timeout (0.5-1 s), shorter than 0.5 + it
    cluster.hub.heal()
    await trio.sleep(0.5)
    return all(n.status()["term"] == term for n in cluster.running())


async def test_long_apply_credit_prevents_an_election(
    cluster3: InProcessCluster, autojump_clock: object
) -> None:
    assert await _silent_leader_after_long_apply(cluster3, credit=True)


async def test_without_the_credit_the_same_silence_elects(
    cluster3: InProcessCluster, autojump_clock: object
) -> None:
    """The control: the scenario above does cost the leader when the credit is dropped."""
    assert not await _silent_leader_after_long_apply(cluster3, credit=False)
