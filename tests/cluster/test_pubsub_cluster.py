"""Pub/sub across an in-process cluster: PUBLISH on any node reaches every node's subscribers
over the mesh (not the Raft log), once, in each publishing node's order."""

from __future__ import annotations

import trio

from aspen.resp.values import Push, Replies
from harness.cluster import Client, InProcessCluster, open_cluster
from harness.resp_wire import parse_reply
from transports import NetworkFaults


def messages(client: Client) -> list[object]:
    return [parse_reply(p) for p in client.pushes]


async def wait_for(client: Client, n: int) -> list[object]:
    with trio.fail_after(5):
        while len(client.pushes) < n:
            await trio.sleep(0.01)
    await trio.sleep(0.5)  # and no more arrive (no duplicates, no re-broadcast echo)
    return messages(client)


async def test_publish_on_any_node_reaches_subscribers_on_every_node(
    cluster3: InProcessCluster, autojump_clock: object
) -> None:
    cluster = cluster3
    subs = {i: cluster.client(i) for i in (1, 2, 3)}
    for c in subs.values():
        assert await c.cmd("SUBSCRIBE", "news") == Replies([Push([b"subscribe", b"news", 1])])
    pattern_sub = cluster.client(3)
    await pattern_sub.cmd("PSUBSCRIBE", "n*")
    await cluster.wait_converged()  # (a follower may learn the last commit a moment later)
    entries_before = {n.id: n.state.applied_index for n in cluster.running()}

    # PUBLISH counts the receivers on its own node (as Redis Cluster does)
    assert await cluster.client(1).cmd("PUBLISH", "news", "from-1") == 1
    assert await cluster.client(2).cmd("PUBLISH", "news", "from-2") == 1
    assert await cluster.client(3).cmd("PUBLISH", "news", "from-3") == 2
    for i, c in subs.items():
        got = await wait_for(c, 3)
        assert sorted(m[2] for m in got) == [b"from-1", b"from-2", b"from-3"], i  # type: ignore[index]
        assert all(m[:2] == [b"message", b"news"] for m in got)  # type: ignore[index]
    got = await wait_for(pattern_sub, 3)
    assert sorted(got) == [[b"pmessage", b"n*", b"news", f"from-{i}".encode()] for i in (1, 2, 3)]
    # nothing went through the log
    assert {n.id: n.state.applied_index for n in cluster.running()} == entries_before
    # each node's view is its own
    for i in (1, 2, 3):
        numsub = await cluster.client(i).cmd("PUBSUB", "NUMSUB", "news")
        assert numsub == [b"news", 1]
        assert await cluster.client(i).cmd("PUBSUB", "NUMPAT") == (1 if i == 3 else 0)


async def test_each_publishers_order_is_kept(
    cluster3: InProcessCluster, autojump_clock: object
) -> None:
    cluster = cluster3
    sub = cluster.client(3)
    await sub.cmd("SUBSCRIBE", "seq")
    p1, p2 = cluster.client(1), cluster.client(2)
    for i in range(100):
        await p1.cmd("PUBLISH", "seq", f"a{i}")
        await p2.cmd("PUBLISH", "seq", f"b{i}")
        if i % 10 == 0:
            await trio.sleep(0)  # interleave with the mesh tasks now and then
    got = [m[2] for m in await wait_for(sub, 200)]  # type: ignore[index]
    assert [m for m in got if m.startswith(b"a")] == [f"a{i}".encode() for i in range(100)]
    assert [m for m in got if m.startswith(b"b")] == [f"b{i}".encode() for i in range(100)]


async def test_learners_get_messages_and_their_publishes_reach_voters(
    cluster3: InProcessCluster, autojump_clock: object
) -> None:
    cluster = cluster3
    leader = await cluster.wait_leader()
    await cluster.start(4, peers=[1, 2, 3])
    await leader.add_learner(4, "10.0.0.4:7000")
    on_learner, on_voter = cluster.client(4), cluster.client(1)
    await on_learner.cmd("SUBSCRIBE", "x")
    await on_voter.cmd("SUBSCRIBE", "x")
    await cluster.client(2).cmd("PUBLISH", "x", "to-all")
    await cluster.client(4).cmd("PUBLISH", "x", "from-learner")
    assert sorted(m[2] for m in await wait_for(on_learner, 2)) == [b"from-learner", b"to-all"]  # type: ignore[index]
    assert sorted(m[2] for m in await wait_for(on_voter, 2)) == [b"from-learner", b"to-all"]  # type: ignore[index]


async def test_unsubscribed_and_reset_clients_get_nothing(
    cluster3: InProcessCluster, autojump_clock: object
) -> None:
    cluster = cluster3
    a, b = cluster.client(2), cluster.client(3)
    await a.cmd("SUBSCRIBE", "c1", "c2")
    await b.cmd("PSUBSCRIBE", "c*")
    await a.cmd("UNSUBSCRIBE", "c1")
    await b.cmd("RESET")
    await cluster.client(1).cmd("PUBLISH", "c1", "gone")
    await cluster.client(1).cmd("PUBLISH", "c2", "here")
    assert [m[2] for m in await wait_for(a, 1)] == [b"here"]  # type: ignore[index]
    assert b.pushes == []
    assert await cluster.client(3).cmd("PUBSUB", "NUMPAT") == 0


async def test_at_most_once_and_in_order_over_a_faulty_network(autojump_clock: object) -> None:
    """Duplicated, reordered and dropped envelopes: every subscriber sees a subsequence of each
    publisher's order, each message at most once."""
    faults = NetworkFaults(drop_rate=0.05, duplicate_rate=0.3, reorder_rate=0.3,
                           max_delay=0.01, reorder_delay=0.05)
    async with open_cluster(3, seed=5, faults=faults) as cluster:
        await cluster.wait_leader()
        subs = [cluster.client(3), cluster.client(2)]
        for s in subs:
            await s.cmd("SUBSCRIBE", "f")
        pubs = {b"a": cluster.client(1), b"b": cluster.client(2)}
        for i in range(150):
            for tag, p in pubs.items():
                await p.cmd("PUBLISH", "f", tag + b"%d" % i)
            await trio.sleep(0.002)  # separate envelopes, so the network can reorder them
        await trio.sleep(1)
        for s in subs:
            got = [m[2] for m in messages(s)]  # type: ignore[index]
            assert len(got) == len(set(got))  # no duplicates
            for tag in pubs:
                seq = [int(m[1:]) for m in got if m[:1] == tag]
                assert seq == sorted(seq)
            # the remote publishers' messages mostly arrive (drops are at most ~5% + stragglers)
            remote = [m for m in got if m[:1] == (b"b" if s is subs[0] else b"a")]
            assert len(remote) > 100
