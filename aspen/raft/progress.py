"""What a leader knows about each follower's log (etcd's Progress, in miniature)."""

from __future__ import annotations

import collections
import enum

import attrs


class ProgressState(enum.Enum):
    PROBE = "probe"  # one append in flight at a time until we find where logs match
    REPLICATE = "replicate"  # stream appends optimistically, bounded by the in-flight window
    SNAPSHOT = "snapshot"  # sending a snapshot; appends are paused


@attrs.define
class Progress:
    match: int = 0
    next: int = 1
    state: ProgressState = ProgressState.PROBE
    probe_sent: bool = False
    recent_active: bool = False
    inflight: collections.deque[int] = attrs.Factory(collections.deque)
    pending_snapshot: int = 0  # index of the snapshot being sent
    snapshot_offset: int = 0  # bytes of it the follower has acknowledged
    incarnation: int = 0  # the newest process life of the follower we heard from (0: unknown)
    incarnation_tick: int = 0  # the leader's tick when that life last answered
    prior_match: int = 0  # match of its previous life, until we learn whether it kept its log

    def become_probe(self) -> None:
        if self.state is ProgressState.SNAPSHOT:
            self.next = max(self.match + 1, self.pending_snapshot + 1)
        else:
            self.next = self.match + 1
        self.state = ProgressState.PROBE
        self.probe_sent = False
        self.inflight.clear()
        self.pending_snapshot = 0

    def new_incarnation(self, incarnation: int, next_index: int) -> None:
        """The follower restarted: what its previous life acknowledged may be gone (a wiped
        data dir). Forget it and probe from `next_index` (our last index + 1), as a new
        leader would; `prior_match` remembers the old match to tell a wipe from a restart."""
        self.prior_match = max(self.match, self.prior_match)
        self.incarnation = incarnation
        self.match = 0
        self.state = ProgressState.PROBE
        self.next = next_index
        self.probe_sent = False
        self.inflight.clear()
        self.pending_snapshot = 0
        self.snapshot_offset = 0

    def become_replicate(self) -> None:
        self.state = ProgressState.REPLICATE
        self.next = self.match + 1
        self.probe_sent = False
        self.inflight.clear()

    def become_snapshot(self, index: int) -> None:
        self.state = ProgressState.SNAPSHOT
        self.pending_snapshot = index
        self.snapshot_offset = 0
        self.inflight.clear()

    def maybe_update(self, index: int) -> bool:
        """An ack for `index`: raise match (and next). False if it was stale."""
        updated = index > self.match
        if updated:
            self.match = index
            self.probe_sent = False
        self.next = max(self.next, index + 1)
        while self.inflight and self.inflight[0] <= index:
            self.inflight.popleft()
        return updated

    def is_paused(self, max_inflight: int) -> bool:
        if self.state is ProgressState.PROBE:
            return self.probe_sent
        if self.state is ProgressState.REPLICATE:
            return len(self.inflight) >= max_inflight
        return True
