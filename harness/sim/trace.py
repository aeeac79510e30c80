"""The trace of what the simulator did, for failure reports.

Every event is kept (a run has a few thousand; appending is cheap). A failure report shows
the events that led to it: the last ones for a failed invariant (it fails the moment it is
broken), or the window around the first operation the linearizability checker could not
place (that check runs at the end of the run).
"""

from __future__ import annotations

import attrs


@attrs.frozen
class TraceEvent:
    time_ms: int
    node: int | str  # a node id, "client N", "net" or "nemesis"
    what: str

    def __str__(self) -> str:
        who = f"n{self.node}" if isinstance(self.node, int) else self.node
        return f"{self.time_ms:>8} ms  {who:<10} {self.what}"


class Trace:
    def __init__(self) -> None:
        self.events: list[TraceEvent] = []

    def add(self, time_ms: int, node: int | str, what: str) -> None:
        self.events.append(TraceEvent(time_ms, node, what))

    def render(self, last: int = 80) -> str:
        return "\n".join(str(e) for e in self.events[-last:])

    def render_window(self, start_ms: float, end_ms: float, limit: int = 150) -> str:
        """Events in [start_ms, end_ms]; if too many, the ones closest to end_ms."""
        evs = [e for e in self.events if start_ms <= e.time_ms <= end_ms]
        return "\n".join(str(e) for e in evs[-limit:])

    def write(self, path: str) -> None:
        with open(path, "w") as fh:
            fh.writelines(f"{e}\n" for e in self.events)
