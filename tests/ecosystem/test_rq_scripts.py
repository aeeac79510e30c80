"""RQ 2.x's Lua paths (EVALSHA through redis-py's Script) against a three-node cluster: the
ones tests/ecosystem/test_rq.py leaves out because they needed scripting."""

from __future__ import annotations

import operator

import rq

from harness.daemons import DaemonCluster


def test_rq_queue_empty_is_a_script(cluster: DaemonCluster) -> None:
    leader = cluster.wait_leader()
    follower = next(i for i in cluster.voters if i != leader)
    queue = rq.Queue("scripted", connection=cluster.client(follower))
    jobs = [queue.enqueue(operator.add, i, i) for i in range(5)]
    assert len(queue) == 5
    assert queue.empty() == 5  # Queue.empty runs a Lua script that deletes the jobs too
    assert len(queue) == 0
    other = cluster.client(leader)
    assert all(other.exists(job.key) == 0 for job in jobs)
