"""Session rules around pub/sub that the wire differential test does not reach."""

from __future__ import annotations

from aspen.kv.keyspace import Keyspace
from aspen.kv.ops import ReadOp, TxnOp, WriteOp
from aspen.kv.session import Session
from aspen.kv.spec import Route
from aspen.pubsub import PubSubHub
from aspen.resp import values as v
from aspen.resp.protocol import encode
from harness.local_kv import LocalContext, LocalExecutor


class World:
    def __init__(self) -> None:
        self.ks = Keyspace()
        self.ex = LocalExecutor(self.ks, lambda: 1_700_000_000_000)
        self.ctx = LocalContext(self.ks)
        self.hub = PubSubHub()

    def session(self, client_id: int) -> tuple[Session, list[bytes]]:
        inbox: list[bytes] = []
        return Session(client_id, self.ctx, pubsub=self.hub.client(inbox.append)), inbox

    def run(self, s: Session, *args: str) -> object:
        out = s.handle([a.encode() for a in args])
        if isinstance(out, ReadOp | WriteOp | TxnOp):
            out = s.finish(out, self.ex.execute(out))
        return out


def test_subscribe_inside_multi_runs_at_exec_and_enters_subscribed_mode() -> None:
    w = World()
    s, _ = w.session(1)
    assert w.run(s, "MULTI") == v.OK
    assert w.run(s, "SUBSCRIBE", "a", "b") == v.QUEUED
    assert w.run(s, "SET", "k", "1") == v.QUEUED
    # Redis 7.0.15 sends a malformed EXEC here (header *2, three elements); Aspen counts them
    assert w.run(s, "EXEC") == [v.Push([b"subscribe", b"a", 1]), v.Push([b"subscribe", b"b", 2]),
                                v.OK]
    assert isinstance(w.run(s, "GET", "k"), v.Error)
    assert w.run(s, "PING") == [b"pong", b""]


def test_resp3_runs_anything_while_subscribed_until_it_switches_back_to_resp2() -> None:
    w = World()
    s, inbox = w.session(1)
    w.run(s, "HELLO", "3")
    w.run(s, "SUBSCRIBE", "a")
    assert w.run(s, "SET", "k", "1") == v.OK
    assert w.run(s, "PING") == v.PONG
    assert w.run(s, "PUBLISH", "a", "self") == 1
    assert inbox == [encode(v.Push([b"message", b"a", b"self"]), 3)]
    w.run(s, "HELLO", "2")
    assert isinstance(w.run(s, "GET", "k"), v.Error)
    w.hub.publish(b"a", b"now-resp2")
    assert inbox[-1] == encode(v.Push([b"message", b"a", b"now-resp2"]), 2)
    assert w.run(s, "RESET") == v.SimpleString("RESET")
    assert w.hub.channels == {} and w.run(s, "GET", "k") == b"1"


def test_client_list_shows_subscriptions() -> None:
    w = World()
    s, _ = w.session(5)
    w.run(s, "SUBSCRIBE", "a", "b")
    w.run(s, "PSUBSCRIBE", "x*")
    line = s.client_info().line()
    assert b" flags=P " in line and b" sub=2 psub=1 " in line
    w.run(s, "UNSUBSCRIBE")
    w.run(s, "PUNSUBSCRIBE")
    assert b" flags=N " in s.client_info().line()


def test_admin_commands_routed_by_the_session_obey_subscribed_mode() -> None:
    class Admin:
        def cmd_status(self, argv: list[bytes]) -> object:
            return [b"id", b"1"]

    w = World()
    s, _ = w.session(1)
    s.layers[Route.NODE] = Admin()
    assert w.run(s, "ASPEN.STATUS") == [b"id", b"1"]
    w.run(s, "SUBSCRIBE", "a")
    err = w.run(s, "ASPEN.STATUS")
    assert isinstance(err, v.Error) and "Can't execute 'aspen.status'" in err.message
    assert w.run(s, "PING") == [b"pong", b""]


def test_a_session_without_a_hub_says_so() -> None:
    s = Session(1, LocalContext(Keyspace()))
    for argv in ([b"SUBSCRIBE", b"a"], [b"PUBLISH", b"a", b"m"], [b"PUBSUB", b"NUMPAT"]):
        reply = s.handle(argv)
        assert isinstance(reply, v.Error) and "pub/sub is not available" in reply.message
    assert isinstance(s.handle([b"PUBSUB", b"HELP"]), list)
