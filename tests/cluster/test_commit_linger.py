"""The runtime's commit linger (ClusterSettings.commit_linger, RaftConfig.linger_commit): a
follower learns a commit index within the linger when no new entry carries it, long before
the next heartbeat, and its own clients' writes are answered then."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from aspen.cluster.settings import ClusterSettings
from aspen.kv.ops import WriteOp
from aspen.resp.values import OK
from harness.cluster import open_cluster


@pytest.mark.parametrize("linger", [0.0, 0.002, 0.02])
async def test_followers_learn_the_commit_within_the_linger(
    linger: float, autojump_clock: trio.testing.MockClock
) -> None:
    # heartbeats every 2 s: only the linger (or the immediate append) can tell the followers
    async with open_cluster(3, seed=5, tick_interval=1.0, commit_linger=linger) as cluster:
        leader = await cluster.wait_leader(timeout=60)
        await cluster.wait_converged(timeout=60)
        assert leader.raft_config.linger_commit is (linger > 0)
        assert await leader.write(WriteOp((b"SET", b"k", b"v"))) == OK
        committed = trio.current_time()
        index = leader.raft.commit_index
        with trio.fail_after(1.0):
            while any(n.state.applied_index < index for n in cluster.running()):
                await trio.sleep(0.0005)
        # (the memory network delivers at once: what is left is the linger)
        assert trio.current_time() - committed <= linger + 0.001


async def test_a_write_through_a_follower_is_answered_without_waiting_for_a_heartbeat(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_cluster(3, seed=6, tick_interval=1.0, commit_linger=0.002) as cluster:
        leader = await cluster.wait_leader(timeout=60)
        await cluster.wait_converged(timeout=60)
        follower = next(n for n in cluster.running() if n is not leader)
        started = trio.current_time()
        assert await follower.write(WriteOp((b"SET", b"k", b"v"))) == OK
        assert trio.current_time() - started < 0.1


def test_commit_linger_is_validated() -> None:
    assert ClusterSettings(node_id=1, commit_linger=0).commit_linger == 0
    with pytest.raises(ValueError, match="commit_linger must be 0 or more"):
        ClusterSettings(node_id=1, commit_linger=-0.001)
