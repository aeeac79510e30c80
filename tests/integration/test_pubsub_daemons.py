"""Pub/sub across real `aspen node` daemons (ZeroMQ mesh on loopback): a subscriber on node 3
gets what is published on nodes 1 and 2; when it disconnects, its subscription goes too."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from harness.daemons import DaemonCluster, wait_until

pytestmark = pytest.mark.slow


def test_publish_on_nodes_1_and_2_reaches_a_subscriber_on_node_3(tmp_path: Path) -> None:
    with DaemonCluster(3, tmp_path) as cluster:
        cluster.start_all()
        try:
            cluster.wait_leader()
            sub_conn = redis.Redis(port=cluster.resp_port(3), protocol=2)
            ps = sub_conn.pubsub(ignore_subscribe_messages=True)
            ps.subscribe("alerts")
            ps.psubscribe("al*")
            wait_until("subscribed", lambda: ps.get_message(timeout=0.1) is None
                       and cluster.client(3).pubsub_numsub("alerts") == [(b"alerts", 1)], 10)
            # the mesh may still be connecting: publish until the first message gets through
            p1, p2 = cluster.client(1), cluster.client(2)
            deadline = time.monotonic() + 15
            got: list[dict[str, object]] = []
            while not got and time.monotonic() < deadline:
                assert p1.publish("alerts", "warm-up") == 0  # no subscriber on node 1 itself
                msg = ps.get_message(timeout=0.2)
                if msg is not None:
                    got.append(msg)
            assert got, "nothing published on node 1 reached node 3"
            time.sleep(0.3)
            while ps.get_message(timeout=0.1) is not None:
                pass
            for i in range(20):
                assert p1.publish("alerts", f"one-{i}") == 0
                assert p2.publish("alerts", f"two-{i}") == 0
            received: list[dict[str, object]] = []
            deadline = time.monotonic() + 10
            while len(received) < 80 and time.monotonic() < deadline:
                msg = ps.get_message(timeout=0.2)
                if msg is not None:
                    received.append(msg)
            plain = [m["data"] for m in received if m["type"] == "message"]
            patterned = [m["data"] for m in received if m["type"] == "pmessage"]
            for stream in (plain, patterned):
                assert [d for d in stream if d.startswith(b"one")] == [  # type: ignore[union-attr]
                    f"one-{i}".encode() for i in range(20)]
                assert [d for d in stream if d.startswith(b"two")] == [  # type: ignore[union-attr]
                    f"two-{i}".encode() for i in range(20)]
            ps.close()
            sub_conn.close()
            wait_until("subscription dropped", lambda: cluster.client(3).pubsub_numsub(
                "alerts") == [(b"alerts", 0)] and cluster.client(3).pubsub_numpat() == 0, 10)
        except BaseException:
            for i in cluster.members:
                print(f"--- n{i}.log\n{cluster.log_tail(i)}")
            raise
