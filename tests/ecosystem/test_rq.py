"""RQ 2.x, unchanged, against a 3-node Aspen cluster: enqueue, a burst worker, results read back.

RQ keeps each job's result in a stream (`XADD rq:results:<id> MAXLEN ~ 10 ...`, read back with
XREVRANGE), registers workers in MULTI blocks and waits on queues with BLMOVE/BLPOP. Some of
its paths (unique enqueue, the scheduler's lock, `Queue.empty`) use Lua scripts (EVALSHA):
those are not exercised here and need scripting (another issue) to work.
"""

from __future__ import annotations

import operator

import pytest
import rq

from harness.daemons import DaemonCluster

pytestmark = pytest.mark.slow


def test_rq_enqueue_burst_worker_and_results(cluster: DaemonCluster) -> None:
    leader = cluster.wait_leader()
    follower = next(i for i in cluster.voters if i != leader)
    conn = cluster.client(follower)  # any node: writes are forwarded to the leader
    queue = rq.Queue("default", connection=conn)
    jobs = [queue.enqueue(operator.add, i, 10) for i in range(5)]
    failing = queue.enqueue(operator.truediv, 1, 0)
    assert queue.count == 6

    worker = rq.SimpleWorker([queue], connection=conn)
    assert worker.work(burst=True) is True

    for i, job in enumerate(jobs):
        job.refresh()
        assert job.get_status() == rq.job.JobStatus.FINISHED
        assert job.return_value() == i + 10  # read back from the job's results stream
        results = job.results()
        assert len(results) == 1 and results[0].type == rq.results.Result.Type.SUCCESSFUL
    failing.refresh()
    assert failing.get_status() == rq.job.JobStatus.FAILED
    assert "ZeroDivisionError" in (failing.latest_result().exc_string or "")
    assert queue.count == 0
    assert conn.type(f"rq:results:{jobs[0].id}") == b"stream"
