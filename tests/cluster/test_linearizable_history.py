"""A concurrent client history under network faults, partitions and leader crashes must be
linearizable (harness/linearizability.py), and the replicas must end identical."""

from __future__ import annotations

import itertools
import random

import pytest
import trio

from harness import linearizability as lin
from harness.cluster import InProcessCluster, open_cluster
from transports import NetworkFaults

FAULTS = NetworkFaults(
    drop_rate=0.02, duplicate_rate=0.02, reorder_rate=0.05, min_delay=0.0, max_delay=0.004
)
KEYS = ["a", "b", "c"]


async def _nemesis(cluster: InProcessCluster, rng: random.Random, stop: trio.Event) -> None:
    crashed: list[int] = []
    while not stop.is_set():
        await trio.sleep(rng.uniform(0.4, 1.0))
        action = rng.randrange(4)
        leaders = cluster.leaders()
        if action == 0 and leaders:
            cluster.hub.isolate(leaders[0].id, cluster.node_ids)
        elif action == 1 and leaders and not crashed:
            crashed.append(leaders[0].id)
            await cluster.stop(leaders[0].id)
        elif action == 2:
            ids = list(cluster.node_ids)
            rng.shuffle(ids)
            cluster.hub.partition(ids[:1], ids[1:])
        else:
            cluster.hub.heal()
            while crashed:
                await cluster.start(crashed.pop())
    cluster.hub.heal()
    while crashed:
        await cluster.start(crashed.pop())


async def _client(
    cluster: InProcessCluster,
    name: int,
    rng: random.Random,
    values: itertools.count[int],
    history: list[lin.Op],
    stop: trio.Event,
) -> None:
    consistency = ["linearizable", "lease"][name % 2]
    while not stop.is_set():
        running = [n.id for n in cluster.running()]
        node_id = rng.choice(running)
        client = cluster.client(node_id)
        await client.cmd("ASPEN.CONSISTENCY", consistency)
        key = rng.choice(KEYS)
        start = trio.current_time()
        if rng.random() < 0.5:
            value = next(values)
            reply = await client.cmd("SET", key, value)
            ok = reply == b"OK" or getattr(reply, "text", None) == "OK"
            history.append(
                lin.Op(name, key, lin.WRITE, start, trio.current_time() if ok else None, value)
            )
        else:
            reply = await client.cmd("GET", key)
            if reply is None or isinstance(reply, bytes):
                output = None if reply is None else int(reply)
                history.append(
                    lin.Op(name, key, lin.READ, start, trio.current_time(), output=output)
                )
        await trio.sleep(rng.uniform(0.0, 0.03))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
async def test_history_under_faults_is_linearizable(seed: int, autojump_clock: object) -> None:
    rng = random.Random(seed)
    history: list[lin.Op] = []
    async with open_cluster(3, seed=seed, faults=FAULTS, request_timeout=1.5) as cluster:
        await cluster.wait_leader()
        stop = trio.Event()
        values = itertools.count(1)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_nemesis, cluster, random.Random(seed + 100), stop)
            for name in range(5):
                nursery.start_soon(
                    _client, cluster, name, random.Random(rng.random()), values, history, stop
                )
            await trio.sleep(8.0)
            stop.set()
        await cluster.wait_leader()
        await cluster.wait_converged()
        assert len(set(cluster.digests().values())) == 1
    completed = [op for op in history if op.ret is not None]
    assert sum(op.kind == lin.WRITE for op in completed) >= 20  # the run did make progress
    assert sum(op.kind == lin.READ for op in completed) >= 20
    result = lin.check(history)
    assert result.ok, result.explain()
