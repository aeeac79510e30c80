"""The driver's order within one Ready: who waits on whom.

A follower's append acknowledgement must not wait for its apply of earlier entries (the
leader commits only once the acknowledgement arrives); a leader's replies must not wait for
its fsync. The Ready is built by hand and the core is a stand-in: the order is the driver's
own decision, whatever the core.
"""

from __future__ import annotations

from collections.abc import Iterator

from aspen.raft import Entry, HardState, Message, ReadState, Ready
from aspen.raft.driver import Compact, Driver, Flush, Persist, Send, Step
from aspen.raft.messages import AppendEntriesResponse


class _OneReady:
    """A core with exactly one Ready to hand out."""

    def __init__(self, rd: Ready) -> None:
        self.rd: Ready | None = rd
        self.advanced = False

    def has_ready(self) -> bool:
        return self.rd is not None

    def ready(self) -> Ready:
        rd, self.rd = self.rd, None
        assert rd is not None
        return rd

    def advance(self, rd: Ready) -> None:
        self.advanced = True

    def tick(self) -> None:
        pass

    def step(self, msg: Message) -> None:
        pass


class _Recorder:
    """The host: records its calls in the one list the steps go to as well."""

    def __init__(self, events: list[object]) -> None:
        self.events = events

    def on_ready(self, rd: Ready) -> None:
        pass

    def after_inputs(self, ticked: bool) -> None:
        pass

    def apply(self, entries: list[Entry]) -> None:
        if entries:
            self.events.append(("apply", [e.index for e in entries]))

    def serve_reads(self, read_states: list[ReadState]) -> None:
        if read_states:
            self.events.append(("reads", [r.index for r in read_states]))

    def after_apply(self) -> None:
        pass


def _run(rd: Ready) -> list[object]:
    events: list[object] = []
    core = _OneReady(rd)
    driver = Driver(core, _Recorder(events), HardState(term=2, vote=1))  # type: ignore[arg-type]
    steps: Iterator[Step] = driver.run_pass()
    for step in steps:
        if isinstance(step, Persist):
            events.append(("persist", [e.index for e in step.entries]))
        elif isinstance(step, Send):
            events.append(("send", [type(m).__name__ for m in step.messages]))
        else:
            assert isinstance(step, (Flush, Compact))
    assert core.advanced
    return events


def _entries(*indexes: int) -> list[Entry]:
    return [Entry(index=i, term=2, data=b"op %d" % i) for i in indexes]


ACK = AppendEntriesResponse(src=2, dst=1, term=2, success=True, index=7)


def test_a_follower_acknowledges_before_it_applies() -> None:
    rd = Ready(
        entries=_entries(6, 7),
        committed=_entries(4, 5),
        persisted_messages=[ACK],
        read_states=[ReadState(token=b"r", index=5)],
    )
    assert _run(rd) == [
        ("persist", [6, 7]),
        ("send", ["AppendEntriesResponse"]),
        ("apply", [4, 5]),
        ("reads", [5]),
    ]


def test_committed_entries_of_the_same_ready_apply_after_it_too_in_order() -> None:
    rd = Ready(entries=_entries(6, 7), committed=_entries(5, 6), persisted_messages=[ACK])
    assert _run(rd) == [
        ("persist", [6, 7]),
        ("send", ["AppendEntriesResponse"]),
        ("apply", [5, 6]),
    ]


def test_with_nothing_waiting_on_the_fsync_the_replies_go_first() -> None:
    """A leader: its own append acknowledges nobody, its clients wait on the apply."""
    rd = Ready(
        entries=_entries(8),
        committed=_entries(6, 7),
        read_states=[ReadState(token=b"r", index=7)],
    )
    assert _run(rd) == [("apply", [6, 7]), ("reads", [7]), ("persist", [8])]


def test_without_an_fsync_the_entries_apply_at_once() -> None:
    rd = Ready(committed=_entries(3), persisted_messages=[ACK])
    assert _run(rd) == [("apply", [3]), ("send", ["AppendEntriesResponse"])]
