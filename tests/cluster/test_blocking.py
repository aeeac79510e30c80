"""BLPOP & co. on an in-process cluster: clients park on their own node and are served by
replicated pops when a committed write makes an element available (aspen.cluster.blocking)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aspen.resp.values import NULL_ARRAY, OK, Double, Error
from harness.cluster import InProcessCluster, open_cluster


@asynccontextmanager
async def bounded_nursery(seconds: float = 30) -> AsyncIterator[trio.Nursery]:
    """A nursery that fails the test instead of hanging it (clients never served)."""
    with trio.fail_after(seconds):
        async with trio.open_nursery() as nursery:
            yield nursery


def followers(cluster: InProcessCluster, leader_id: int) -> list[int]:
    return [n.id for n in cluster.running() if n.id != leader_id]


async def wait_parked(cluster: InProcessCluster, node_id: int, n: int) -> None:
    with trio.fail_after(10):
        while cluster.nodes[node_id].blocking.blocked_clients != n:
            await trio.sleep(0.01)


async def test_block_on_a_follower_push_on_the_leader(
    cluster3: InProcessCluster, autojump_clock: object
) -> None:
    leader = await cluster3.wait_leader()
    follower = followers(cluster3, leader.id)[0]
    got: list[object] = []

    async with bounded_nursery() as nursery:

        async def blpop() -> None:
            got.append(await cluster3.client(follower).cmd("BLPOP", "q", "0"))

        nursery.start_soon(blpop)
        await wait_parked(cluster3, follower, 1)
        assert await cluster3.client(leader.id).cmd("RPUSH", "q", "a", "b") == 2
    assert got == [[b"q", b"a"]]
    await cluster3.wait_converged()
    assert len(set(cluster3.digests().values())) == 1
    for node in cluster3.running():  # every replica applied the same pop
        assert await cluster3.client(node.id).cmd("LRANGE", "q", "0", "-1") == [b"b"]
    assert cluster3.nodes[follower].blocking.blocked_clients == 0


async def test_three_clients_on_one_key_are_served_in_arrival_order(
    cluster3: InProcessCluster, autojump_clock: object
) -> None:
    leader = await cluster3.wait_leader()
    node = followers(cluster3, leader.id)[0]
    got: dict[int, object] = {}

    async def blpop(i: int) -> None:
        got[i] = await cluster3.client(node).cmd("BRPOP", "q", "0")

    async with bounded_nursery() as nursery:
        for i in range(3):
            nursery.start_soon(blpop, i)
            await wait_parked(cluster3, node, i + 1)  # arrival order 0, 1, 2
        pusher = cluster3.client(leader.id)
        assert await pusher.cmd("LPUSH", "q", "x") == 1  # one element: only the oldest
        await trio.sleep(1)
        assert list(got) == [0]
        assert await pusher.cmd("LPUSH", "q", "y", "z") == 2
    assert got == {0: [b"q", b"x"], 1: [b"q", b"y"], 2: [b"q", b"z"]}
    assert await cluster3.client(node).cmd("EXISTS", "q") == 0


async def test_timeout_replies_null_and_forgets_the_client(
    cluster3: InProcessCluster, autojump_clock: object
) -> None:
    leader = await cluster3.wait_leader()
    node = followers(cluster3, leader.id)[0]
    client = cluster3.client(node)
    start = trio.current_time()
    assert await client.cmd("BLPOP", "q", "0.5") == NULL_ARRAY
    assert 0.5 <= trio.current_time() - start < 1.5
    assert await client.cmd("BLMOVE", "q", "d", "LEFT", "RIGHT", "0.2") == NULL_ARRAY
    assert await client.cmd("BZPOPMIN", "z", "0.2") == NULL_ARRAY
    assert cluster3.nodes[node].blocking.blocked_clients == 0
    # a later push is not taken by anyone
    assert await cluster3.client(leader.id).cmd("RPUSH", "q", "a") == 1
    await cluster3.wait_converged()
    assert await client.cmd("LRANGE", "q", "0", "-1") == [b"a"]


async def test_disconnect_while_blocked_loses_nothing(
    cluster3: InProcessCluster, autojump_clock: object
) -> None:
    leader = await cluster3.wait_leader()
    node = followers(cluster3, leader.id)[0]
    async with bounded_nursery() as nursery:
        nursery.start_soon(cluster3.client(node).cmd, "BLPOP", "q", "0")
        await wait_parked(cluster3, node, 1)
        nursery.cancel_scope.cancel()  # the client goes away
    assert cluster3.nodes[node].blocking.blocked_clients == 0
    assert len(cluster3.nodes[node].blocking.queues) == 0
    assert await cluster3.client(leader.id).cmd("RPUSH", "q", "a") == 1
    await cluster3.wait_converged()
    assert await cluster3.client(node).cmd("LRANGE", "q", "0", "-1") == [b"a"]


async def test_inside_multi_it_never_blocks(
    cluster3: InProcessCluster, autojump_clock: object
) -> None:
    leader = await cluster3.wait_leader()
    client = cluster3.client(followers(cluster3, leader.id)[0])
    assert await client.cmd("MULTI") == OK
    for cmd in (
        ("BLPOP", "q", "0"),
        ("BLMOVE", "q", "d", "LEFT", "LEFT", "0"),
        ("BLMPOP", "0", "1", "q", "LEFT"),
        ("RPUSH", "q", "a"),
        ("BRPOP", "q", "0"),
    ):
        assert (await client.cmd(*cmd)).text == "QUEUED"  # type: ignore[attr-defined]
    assert await client.cmd("EXEC") == [NULL_ARRAY, None, NULL_ARRAY, 1, [b"q", b"a"]]


async def test_element_available_is_served_at_once(
    cluster3: InProcessCluster, autojump_clock: object
) -> None:
    leader = await cluster3.wait_leader()
    client = cluster3.client(followers(cluster3, leader.id)[0])
    assert await client.cmd("RPUSH", "b", "1", "2", "3") == 3
    assert await client.cmd("BLPOP", "a", "b", "0") == [b"b", b"1"]
    assert await client.cmd("BLMPOP", "0", "2", "a", "b", "RIGHT", "COUNT", "5") == [
        b"b",
        [b"3", b"2"],
    ]
    assert await client.cmd("ZADD", "z", "2", "m", "1", "n") == 2
    assert await client.cmd("BZPOPMAX", "z", "0") == [b"z", b"m", Double(2.0)]
    assert await client.cmd("SET", "s", "x") == OK
    reply = await client.cmd("BLPOP", "s", "0")
    assert isinstance(reply, Error) and reply.message.startswith("WRONGTYPE")


async def test_blmove_and_bzpop_are_served_when_pushed(
    cluster3: InProcessCluster, autojump_clock: object
) -> None:
    leader = await cluster3.wait_leader()
    f1, f2 = followers(cluster3, leader.id)
    got: dict[str, object] = {}

    async def run(name: str, node: int, *cmd: str) -> None:
        got[name] = await cluster3.client(node).cmd(*cmd)

    async with bounded_nursery() as nursery:
        nursery.start_soon(run, "move", f1, "BLMOVE", "src", "dst", "RIGHT", "LEFT", "0")
        nursery.start_soon(run, "zmin", f2, "BZPOPMIN", "z1", "z2", "0")
        nursery.start_soon(run, "mpop", leader.id, "BLMPOP", "0", "1", "m", "LEFT", "COUNT", "2")
        await wait_parked(cluster3, f1, 1)
        await wait_parked(cluster3, f2, 1)
        await wait_parked(cluster3, leader.id, 1)
        pusher = cluster3.client(leader.id)
        assert await pusher.cmd("RPUSH", "src", "a", "b") == 2
        assert await pusher.cmd("ZADD", "z2", "5", "five", "3", "three") == 2
        assert await pusher.cmd("RPUSH", "m", "1", "2", "3") == 3
    assert got == {
        "move": b"b",
        "zmin": [b"z2", b"three", Double(3.0)],
        "mpop": [b"m", [b"1", b"2"]],
    }
    await cluster3.wait_converged()
    client = cluster3.client(f1)
    assert await client.cmd("LRANGE", "dst", "0", "-1") == [b"b"]
    assert await client.cmd("LRANGE", "m", "0", "-1") == [b"3"]
    assert len(set(cluster3.digests().values())) == 1


async def test_two_nodes_race_for_one_element_the_loser_keeps_waiting(
    cluster3: InProcessCluster, autojump_clock: object
) -> None:
    leader = await cluster3.wait_leader()
    f1, f2 = followers(cluster3, leader.id)
    got: list[object] = []

    async def blpop(node: int) -> None:
        got.append(await cluster3.client(node).cmd("BLPOP", "q", "0"))

    async with bounded_nursery() as nursery:
        nursery.start_soon(blpop, f1)
        nursery.start_soon(blpop, f2)
        await wait_parked(cluster3, f1, 1)
        await wait_parked(cluster3, f2, 1)
        pusher = cluster3.client(leader.id)
        assert await pusher.cmd("RPUSH", "q", "only") == 1
        await trio.sleep(1)
        assert got == [[b"q", b"only"]]  # exactly one winner, no duplicate
        blocked = sum(cluster3.nodes[n].blocking.blocked_clients for n in (f1, f2))
        assert blocked == 1
        assert await pusher.cmd("RPUSH", "q", "second") == 1
    assert sorted(got) == [[b"q", b"only"], [b"q", b"second"]]  # type: ignore[type-var]


async def test_leader_change_while_blocked(autojump_clock: object) -> None:
    async with open_cluster(3, seed=11) as cluster:
        leader = await cluster.wait_leader()
        node = followers(cluster, leader.id)[0]
        got: list[object] = []

        async def blpop() -> None:
            got.append(await cluster.client(node).cmd("BLPOP", "q", "0"))

        async with bounded_nursery() as nursery:
            nursery.start_soon(blpop)
            await wait_parked(cluster, node, 1)
            await cluster.stop(leader.id)  # the leader crashes
            new = await cluster.wait_leader(among=followers(cluster, leader.id))
            assert new.id != leader.id
            other = node if new.id != node else followers(cluster, new.id)[0]
            assert await cluster.client(other).cmd("RPUSH", "q", "after") == 1
        assert got == [[b"q", b"after"]]


async def test_shutdown_releases_parked_clients(
    cluster3: InProcessCluster, autojump_clock: object
) -> None:
    leader = await cluster3.wait_leader()
    node = followers(cluster3, leader.id)[0]
    client = cluster3.client(node)
    got: list[object] = []
    async with bounded_nursery() as nursery:

        async def blpop() -> None:
            got.append(await client.cmd("BLPOP", "q", "0"))

        nursery.start_soon(blpop)
        await wait_parked(cluster3, node, 1)
        cluster3.nodes[node].blocking.shutdown()
    assert got == [Error("UNBLOCKED the node is shutting down")]
    assert client.session.should_close


async def test_client_unblock_timeout_and_error(
    cluster3: InProcessCluster, autojump_clock: object
) -> None:
    leader = await cluster3.wait_leader()
    node = followers(cluster3, leader.id)[0]
    admin = cluster3.client(node)
    got: dict[str, object] = {}

    async def run(name: str, client: object) -> None:
        got[name] = await client.cmd("BLPOP", "q", "0")  # type: ignore[attr-defined]

    first, second = cluster3.client(node), cluster3.client(node)
    async with bounded_nursery() as nursery:
        nursery.start_soon(run, "first", first)
        nursery.start_soon(run, "second", second)
        await wait_parked(cluster3, node, 2)
        assert await admin.cmd("CLIENT", "UNBLOCK", first.session.client_id) == 1
        assert await admin.cmd("CLIENT", "UNBLOCK", second.session.client_id, "ERROR") == 1
    assert got == {
        "first": NULL_ARRAY,
        "second": Error("UNBLOCKED client unblocked via CLIENT UNBLOCK"),
    }
    assert await admin.cmd("CLIENT", "UNBLOCK", first.session.client_id) == 0  # not parked
    assert await admin.cmd("CLIENT", "UNBLOCK", "x") == Error(
        "ERR value is not an integer or out of range"
    )
    assert await admin.cmd("CLIENT", "UNBLOCK", "1", "later") == Error(
        "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"
    )
    assert await admin.cmd("CLIENT", "UNBLOCK") == Error(
        "ERR wrong number of arguments for 'client|unblock' command"
    )
    # nothing was taken for the released clients
    assert await cluster3.client(leader.id).cmd("RPUSH", "q", "a") == 1
    await cluster3.wait_converged()
    assert await admin.cmd("LLEN", "q") == 1


async def test_a_snapshot_install_serves_parked_clients(
    cluster3: InProcessCluster, autojump_clock: object
) -> None:
    leader = await cluster3.wait_leader()
    node, other = followers(cluster3, leader.id)
    lagging = cluster3.nodes[node]
    got: list[object] = []

    async def blpop() -> None:
        got.append(await cluster3.client(node).cmd("BLPOP", "q", "0"))

    async with bounded_nursery() as nursery:
        nursery.start_soon(blpop)
        await wait_parked(cluster3, node, 1)
        cluster3.hub.partition([node], [leader.id, other])
        assert await cluster3.client(leader.id).cmd("RPUSH", "q", "a") == 1
        await leader.snapshot_now()  # the push is now only in the snapshot
        cluster3.hub.heal()
    assert got == [[b"q", b"a"]]
    assert lagging.stats.snapshots_installed >= 1


async def test_hangup_while_the_serve_is_in_flight_gives_the_element_back(
    cluster3: InProcessCluster, autojump_clock: object
) -> None:
    leader = await cluster3.wait_leader()
    node, _ = followers(cluster3, leader.id)
    service = cluster3.nodes[node].blocking

    async def heal_later() -> None:
        await trio.sleep(1.0)  # within the request timeout: the serve then applies
        cluster3.hub.heal()

    async with bounded_nursery() as outer, bounded_nursery() as inner:
        inner.start_soon(cluster3.client(node).cmd, "BLPOP", "q", "0")
        await wait_parked(cluster3, node, 1)
        cluster3.hub.block(node, leader.id)  # node hears the log but cannot forward
        assert await cluster3.client(leader.id).cmd("RPUSH", "q", "a") == 1
        with trio.fail_after(5):
            while not service._inflight:  # the node applied the push: serve submitted
                await trio.sleep(0.01)
        outer.start_soon(heal_later)
        inner.cancel_scope.cancel()  # the client goes away mid-serve
    assert service.served == 0
    await cluster3.wait_converged()
    for n in cluster3.running():  # popped by the serve, pushed back: nothing lost
        assert await cluster3.client(n.id).cmd("LRANGE", "q", "0", "-1") == [b"a"]


async def test_parked_blmove_with_a_wrong_type_destination_gets_wrongtype(
    cluster3: InProcessCluster, autojump_clock: object
) -> None:
    leader = await cluster3.wait_leader()
    node = followers(cluster3, leader.id)[0]
    got: list[object] = []

    async def blmove() -> None:
        got.append(await cluster3.client(node).cmd("BLMOVE", "src", "dst", "LEFT", "RIGHT", "0"))

    async with bounded_nursery() as nursery:
        nursery.start_soon(blmove)
        await wait_parked(cluster3, node, 1)
        pusher = cluster3.client(leader.id)
        assert await pusher.cmd("SET", "src", "not a list") == OK  # wrong type: keeps waiting
        await trio.sleep(0.5)
        assert got == []
        assert await pusher.cmd("DEL", "src") == 1
        assert await pusher.cmd("SET", "dst", "x") == OK
        assert await pusher.cmd("RPUSH", "src", "a") == 1
    assert got == [Error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    await cluster3.wait_converged()
    assert await cluster3.client(node).cmd("LRANGE", "src", "0", "-1") == [b"a"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), script=st.lists(st.integers(0, 2**16), min_size=5, max_size=25))
def test_random_parks_pushes_and_hangups_lose_and_duplicate_nothing(
    seed: int, script: list[int]
) -> None:
    """Consumers park on random nodes and keys (BLPOP/BRPOP/BLMPOP), producers push from
    random nodes, some consumers hang up: every element ends up delivered once or still in
    its list, and every replica agrees."""

    async def main() -> None:
        async with open_cluster(3, seed=seed % 1000) as cluster:
            await cluster.wait_leader()
            pushed: set[bytes] = set()
            delivered: list[bytes] = []

            async def consume(node: int, kind: int, key: str, scope: trio.CancelScope) -> None:
                with scope:
                    client = cluster.client(node)
                    if kind == 0:
                        reply = await client.cmd("BLPOP", key, "other", "0")
                    elif kind == 1:
                        reply = await client.cmd("BRPOP", key, "0")
                    else:
                        reply = await client.cmd("BLMPOP", "0", "1", key, "LEFT", "COUNT", "2")
                    assert isinstance(reply, list), reply
                    got = reply[1] if isinstance(reply[1], list) else [reply[1]]
                    delivered.extend(got)  # type: ignore[arg-type]

            async with bounded_nursery(60) as nursery:
                scopes: list[trio.CancelScope] = []
                n = 0
                for step in script:
                    node, key = 1 + step % 3, ("q", "other")[(step >> 2) & 1]
                    action = (step >> 3) % 4
                    if action < 2:
                        scope = trio.CancelScope()
                        scopes.append(scope)
                        nursery.start_soon(consume, node, (step >> 5) % 3, key, scope)
                    elif action == 2:
                        values = [f"e{n + i}".encode() for i in range(1 + (step >> 5) % 3)]
                        n += len(values)
                        pushed.update(values)
                        await cluster.client(node).cmd("RPUSH", key, *values)
                    elif scopes:
                        scopes.pop((step >> 5) % len(scopes)).cancel()  # a hangup
                    await trio.sleep(((step >> 7) % 4) * 0.01)
                await trio.sleep(1)
                for scope in scopes:
                    scope.cancel()  # whoever still waits goes away
            await cluster.wait_converged()
            assert len(set(cluster.digests().values())) == 1
            remaining: list[bytes] = []
            for key in ("q", "other"):
                remaining += await cluster.client(1).cmd("LRANGE", key, "0", "-1")  # type: ignore[operator]
            assert len(delivered) == len(set(delivered))
            assert sorted(delivered + remaining) == sorted(pushed)
            for node in cluster.running():
                assert node.blocking.blocked_clients == 0

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


async def test_pushes_by_lmove_and_exec_serve_parked_clients(
    cluster3: InProcessCluster, autojump_clock: object
) -> None:
    leader = await cluster3.wait_leader()
    node = followers(cluster3, leader.id)[0]
    got: list[object] = []

    async def brpop(key: str) -> None:
        got.append(await cluster3.client(node).cmd("BRPOP", key, "0"))

    async with bounded_nursery() as nursery:
        nursery.start_soon(brpop, "by-lmove")
        nursery.start_soon(brpop, "by-exec")
        await wait_parked(cluster3, node, 2)
        other = cluster3.client(leader.id)
        assert await other.cmd("RPUSH", "src", "moved") == 1
        assert await other.cmd("LMOVE", "src", "by-lmove", "LEFT", "LEFT") == b"moved"
        assert await other.cmd("MULTI") == OK
        await other.cmd("RPUSH", "by-exec", "in-txn")
        assert await other.cmd("EXEC") == [1]
    assert sorted(got) == [[b"by-exec", b"in-txn"], [b"by-lmove", b"moved"]]  # type: ignore[type-var]
