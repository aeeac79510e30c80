"""`aspen backup` of a cluster under write load, `aspen restore` into a new cluster.

Writers keep writing while a follower's control plane is asked for a backup; every write
acknowledged before the request must be in the cluster restored from it (and the backup's
index covers them), and the restored cluster takes writes.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import redis

from aspen.backup import decode_backup
from harness.daemons import DaemonCluster, started_cluster


def _writer(client: redis.Redis, name: str, stop: threading.Event,
            acked: list[tuple[float, bytes, bytes]]) -> None:
    i = 0
    while not stop.is_set():
        key, value = f"{name}:{i}".encode(), f"v{i}".encode()
        try:
            client.set(key, value)
            client.rpush(f"{name}:log".encode(), value)
        except redis.RedisError:
            continue
        acked.append((time.monotonic(), key, value))
        i += 1


def _aspen(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aspen.cli", *args], capture_output=True,
                          text=True, timeout=120)


def test_backup_under_load_restores_every_acknowledged_write(tmp_path: Path) -> None:
    backup = tmp_path / "cluster.backup"
    with started_cluster(3, tmp_path / "old") as old:
        leader = old.wait_leader()
        follower = next(i for i in old.members if i != leader)
        stop = threading.Event()
        acked: list[list[tuple[float, bytes, bytes]]] = [[], []]
        writers = [threading.Thread(target=_writer, args=(old.client(n), f"w{j}", stop,
                                                          acked[j]))
                   for j, n in enumerate((leader, follower))]
        for w in writers:
            w.start()
        time.sleep(2.0)
        asked = time.monotonic()
        done = _aspen("backup", str(backup), "--http", old.http(follower))
        answered = time.monotonic()
        time.sleep(0.5)
        stop.set()
        for w in writers:
            w.join(10)
        assert done.returncode == 0, done.stderr
        assert "aspen backup:" in done.stdout and f"from node {follower}" in done.stdout
        before = [(k, v) for log in acked for t, k, v in log if t < asked]
        after = [(k, v) for log in acked for t, k, v in log if t > answered]
        assert len(before) > 20 and after, "the writers did not keep writing"

    restored_dir = tmp_path / "new"
    new = DaemonCluster(3, restored_dir)  # fresh configs, ports and empty data dirs
    with new:
        configs = [str(new.config_path(i)) for i in (1, 2, 3)]
        done = _aspen("restore", str(backup), *[x for c in configs for x in ("--config", c)])
        assert done.returncode == 0, done.stderr
        again = _aspen("restore", str(backup), "--config", configs[0])
        assert again.returncode == 1 and "not empty" in again.stderr
        new.start_all()
        leader = new.wait_leader()
        client = new.client(leader)
        for key, value in before:
            assert client.get(key) == value, key
        index = decode_backup(backup.read_bytes()).index
        assert new.status(leader)["snapshot_index"] >= index
        for j in (0, 1):  # each writer's log is a prefix of what it wrote: nothing reordered
            log = client.lrange(f"w{j}:log", 0, -1)
            assert log == [f"v{i}".encode() for i in range(len(log))]
        assert client.set("after-restore", "1")
        new.wait_applied(new.status(leader)["commit_index"], new.members)
        for i in new.members:
            assert new.client(i).get("after-restore") == b"1"

