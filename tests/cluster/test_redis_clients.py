"""Real Redis clients (redis-py over TCP) against an in-process cluster's RESP servers."""

from __future__ import annotations

import pytest
import redis
import trio

from harness.cluster import open_cluster


@pytest.mark.slow
async def test_redis_py_against_every_node() -> None:
    async with open_cluster(3, seed=31, tick_interval=0.05) as cluster:
        leader = await cluster.wait_leader()
        ports = {n: await cluster.serve_resp(n) for n in (1, 2, 3)}
        follower = next(n for n in (1, 2, 3) if n != leader.id)

        def scenario() -> None:
            clients = {
                n: redis.Redis(port=p, socket_timeout=10, decode_responses=True)
                for n, p in ports.items()
            }
            try:
                f = clients[follower]
                assert f.set("greeting", "hello") is True
                for c in clients.values():  # linearizable by default: seen at once everywhere
                    assert c.get("greeting") == "hello"
                pipe = f.pipeline(transaction=True)
                pipe.incr("n").incr("n").get("n")
                assert pipe.execute() == [1, 2, "2"]
                assert f.execute_command("ASPEN.CONSISTENCY", "lease") == "OK"
                assert f.get("n") == "2"
                with pytest.raises(redis.ResponseError, match="not an integer"):
                    f.incr("greeting")
                assert f.set("ttl", "x", px=100_000) is True
                assert 0 < clients[leader.id].pttl("ttl") <= 100_000
            finally:
                for c in clients.values():
                    c.close()

        await trio.to_thread.run_sync(scenario)
