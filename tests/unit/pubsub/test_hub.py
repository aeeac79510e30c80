"""The hub and per-connection subscriber state, against a plain model of who is subscribed."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from aspen.kv.glob import match
from aspen.pubsub.hub import PubSubClient, PubSubHub
from aspen.resp.protocol import encode
from aspen.resp.values import Push

NAMES = [b"a", b"b", b"ab", b"a*", b"*", b"?"]
op = st.one_of(
    st.tuples(st.just("subscribe"), st.integers(0, 2), st.lists(st.sampled_from(NAMES),
                                                                 min_size=1, max_size=3)),
    st.tuples(st.just("unsubscribe"), st.integers(0, 2), st.lists(st.sampled_from(NAMES),
                                                                   max_size=2)),
    st.tuples(st.just("psubscribe"), st.integers(0, 2), st.lists(st.sampled_from(NAMES),
                                                                  min_size=1, max_size=3)),
    st.tuples(st.just("punsubscribe"), st.integers(0, 2), st.lists(st.sampled_from(NAMES),
                                                                    max_size=2)),
    st.tuples(st.just("close"), st.integers(0, 2), st.just([])),
    st.tuples(st.just("publish"), st.integers(0, 2), st.sampled_from(NAMES).map(lambda n: [n])),
)


@settings(max_examples=100, deadline=None)
@given(ops=st.lists(op, max_size=30), resp=st.lists(st.sampled_from([2, 3]), min_size=3,
                                                   max_size=3))
def test_hub_matches_a_model_of_subscriptions(ops: list[tuple[str, int, list[bytes]]],
                                              resp: list[int]) -> None:
    hub = PubSubHub()
    inbox: list[list[bytes]] = [[], [], []]
    clients = [hub.client(inbox[i].append, resp[i]) for i in range(3)]
    model_ch: list[list[bytes]] = [[], [], []]  # subscription order
    model_pat: list[list[bytes]] = [[], [], []]
    for kind, who, names in ops:
        c = clients[who]
        if kind == "publish":
            before = [len(box) for box in inbox]
            n = hub.publish(names[0], b"m")
            want = []
            for i in range(3):
                expect = []
                if names[0] in model_ch[i]:
                    expect.append(encode(Push([b"message", names[0], b"m"]), resp[i]))
                expect += [encode(Push([b"pmessage", p, names[0], b"m"]), resp[i])
                           for p in model_pat[i] if match(p, names[0])]
                want.append(expect)
                # the channel's message first, then pmessages in the hub's pattern order
                got = inbox[i][before[i]:]
                assert sorted(got) == sorted(expect)
                if names[0] in model_ch[i]:
                    assert got[0] == expect[0]
            assert n == sum(map(len, want))
            continue
        if kind == "close":
            c.close()
            model_ch[who], model_pat[who] = [], []
            continue
        replies = getattr(c, kind)(names)
        model = model_pat[who] if kind in ("psubscribe", "punsubscribe") else model_ch[who]
        targets = names or list(model)
        if kind.startswith(("subscribe", "psubscribe")):
            for name in names:
                if name not in model:
                    model.append(name)
        else:
            for name in targets:
                if name in model:
                    model.remove(name)
        counts = [r.items[2] for r in replies]
        assert all(isinstance(r, Push) and r.items[0] == kind.encode() for r in replies)
        if targets:
            assert [r.items[1] for r in replies] == targets
        else:
            assert [r.items[1] for r in replies] == [None]
        assert counts[-1] == len(model_ch[who]) + len(model_pat[who]) == c.count
    # the hub's indexes are exactly the union of the clients' subscriptions
    want_ch = {ch: {i for i in range(3) if ch in model_ch[i]} for ch in NAMES}
    want_pat = {p: {i for i in range(3) if p in model_pat[i]} for p in NAMES}
    assert {ch: {clients.index(c) for c in subs} for ch, subs in hub.channels.items()} == {
        k: v for k, v in want_ch.items() if v}
    assert {p: {clients.index(c) for c in subs} for p, subs in hub.patterns.items()} == {
        k: v for k, v in want_pat.items() if v}
    assert hub.numpat() == len([p for p, v in want_pat.items() if v])
    assert hub.numsub([b"a", b"zz"]) == [b"a", len(want_ch[b"a"]), b"zz", 0]
    assert sorted(hub.active_channels(b"a*")) == sorted(
        ch for ch, v in want_ch.items() if v and match(b"a*", ch))


def test_publish_queues_for_the_mesh_only_when_one_is_attached() -> None:
    hub = PubSubHub()
    hub.publish(b"c", b"1")
    assert hub.outbound == []
    kicks: list[int] = []
    hub.mesh_attached, hub.on_outbound = True, lambda: kicks.append(1)
    hub.publish(b"c", b"2")
    hub.deliver(b"c", b"from-a-peer")  # a peer's message is never sent on
    assert hub.outbound == [(b"c", b"2")] and kicks == [1]


def test_a_sink_that_drops_its_subscriber_mid_delivery_is_counted_once() -> None:
    hub = PubSubHub()
    got: list[bytes] = []
    victim: list[PubSubClient] = []

    def closing_sink(data: bytes) -> None:
        victim[0].close()  # e.g. its output overflowed and the connection went

    victim.append(hub.client(closing_sink))
    other = hub.client(got.append)
    victim[0].subscribe([b"c"])
    other.subscribe([b"c"])
    assert hub.publish(b"c", b"x") == 2
    assert hub.numsub([b"c"]) == [b"c", 1]
    assert hub.publish(b"c", b"y") == 1
