"""BZMPOP on an in-process cluster: parked on a follower, served by a replicated pop from the
sorted set a later ZADD fills (up to COUNT members), the loser of a race keeps waiting, a
timeout answers null, and a client that leaves gets its members given back."""

from __future__ import annotations

import trio
import trio.testing
from test_blocking import bounded_nursery, followers, wait_parked

from aspen.cluster.blocking import give_back_op
from aspen.resp.values import NULL_ARRAY, Double
from harness.cluster import InProcessCluster


async def test_bzmpop_parks_and_is_served_by_a_later_zadd(
    cluster3: InProcessCluster, autojump_clock: object
) -> None:
    leader = await cluster3.wait_leader()
    f1, f2 = followers(cluster3, leader.id)
    got: dict[str, object] = {}

    async def run(name: str, node: int, *cmd: str) -> None:
        got[name] = await cluster3.client(node).cmd(*cmd)

    async with bounded_nursery() as nursery:
        nursery.start_soon(run, "max", f1, "BZMPOP", "0", "2", "z1", "z2", "MAX", "COUNT", "2")
        await wait_parked(cluster3, f1, 1)
        nursery.start_soon(run, "min", f2, "BZMPOP", "0", "1", "z2", "MIN")
        await wait_parked(cluster3, f2, 1)
        pusher = cluster3.client(leader.id)
        assert await pusher.cmd("ZADD", "z2", "1", "a", "2", "b", "3", "c") == 3
    # the first to park is served first, with up to COUNT members; the second gets the rest
    assert got == {
        "max": [b"z2", [[b"c", Double(3.0)], [b"b", Double(2.0)]]],
        "min": [b"z2", [[b"a", Double(1.0)]]],
    }
    await cluster3.wait_converged()
    assert await cluster3.client(f1).cmd("EXISTS", "z2") == 0
    assert len(set(cluster3.digests().values())) == 1
    assert cluster3.nodes[f1].blocking.blocked_clients == 0


async def test_bzmpop_times_out_with_a_null_array(
    cluster3: InProcessCluster, autojump_clock: object
) -> None:
    leader = await cluster3.wait_leader()
    client = cluster3.client(leader.id)
    assert await client.cmd("BZMPOP", "0.5", "1", "nothing", "MIN") == NULL_ARRAY
    assert await client.cmd("ZADD", "z", "1", "a") == 1
    assert await client.cmd("BZMPOP", "0.5", "2", "nothing", "z", "MIN") == [
        b"z", [[b"a", Double(1.0)]]
    ]
    assert cluster3.nodes[leader.id].blocking.blocked_clients == 0


async def test_a_string_at_the_key_does_not_serve_a_bzmpop(
    cluster3: InProcessCluster, autojump_clock: object
) -> None:
    leader = await cluster3.wait_leader()
    got: list[object] = []

    async def bzmpop() -> None:
        got.append(await cluster3.client(leader.id).cmd("BZMPOP", "0", "1", "k", "MIN"))

    async with bounded_nursery() as nursery:
        nursery.start_soon(bzmpop)
        await wait_parked(cluster3, leader.id, 1)
        client = cluster3.client(leader.id)
        assert await client.cmd("RPUSH", "k", "x") == 1  # a list: not for a zset waiter
        await trio.sleep(1)
        assert got == []
        assert await client.cmd("DEL", "k") == 1
        assert await client.cmd("ZADD", "k", "5", "m") == 1
    assert got == [[b"k", [[b"m", Double(5.0)]]]]


def test_give_back_of_a_bzmpop_serve_re_adds_every_member() -> None:
    op = give_back_op(
        [b"bzmpop", b"0", b"1", b"z", b"MIN", b"COUNT", b"2"],
        [b"z", [[b"a", Double(1.5)], [b"b", Double(-2.0)]]],
    )
    assert op is not None and op.argv == [b"zadd", b"z", b"1.5", b"a", b"-2.0", b"b"]
