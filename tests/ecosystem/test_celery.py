"""Celery (Redis broker and result backend) unchanged against a three-node cluster: a worker
subprocess connected to one follower, a producer connected to the other, 20 tasks and a chord
(kombu's unacked-restore mutex is a redis-py Lock; the chord counter is a Lua script)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from harness.daemons import DaemonCluster

HERE = Path(__file__).parent


def test_celery_worker_runs_20_tasks_and_a_chord(cluster: DaemonCluster, tmp_path: Path) -> None:
    leader = cluster.wait_leader()
    worker_node, producer_node = [i for i in cluster.voters if i != leader]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    env["ASPEN_CELERY_URL"] = f"redis://127.0.0.1:{cluster.resp_port(worker_node)}/0"
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celery_tasks", "worker", "--pool=solo",
         "--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        env=env, cwd=HERE, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        os.environ["ASPEN_CELERY_URL"] = (
            f"redis://127.0.0.1:{cluster.resp_port(producer_node)}/0")
        sys.path.insert(0, str(HERE))
        import importlib

        import celery_tasks

        importlib.reload(celery_tasks)  # pick up this cluster's URL
        results = [celery_tasks.add.delay(i, i) for i in range(20)]
        assert [r.get(timeout=60) for r in results] == [2 * i for i in range(20)]
        assert all(r.successful() for r in results)
        # a chord: the result backend counts the header's results with its Lua scripts
        from celery import chord

        done = chord(celery_tasks.add.s(i, 1) for i in range(5))(celery_tasks.total.s())
        assert done.get(timeout=60) == sum(i + 1 for i in range(5))
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        log.close()
        print((tmp_path / "worker.log").read_text()[-3000:])
