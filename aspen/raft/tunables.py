"""Tunables of the Raft core, in logical ticks and counts (the runtime owns wall time)."""

from __future__ import annotations

import attrs


def _positive(_inst: object, attr: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"raft config: {attr.name} must be a positive integer, got {value!r}")


@attrs.frozen
class RaftConfig:
    """All knobs; defaults suit a 3-7 node cluster ticking every ~50 ms (aspen's
    default: a 0.5-1 s election timeout, heartbeats every 50 ms).

    election_tick: a follower campaigns after a random timeout in
        [election_tick, 2 * election_tick) ticks without hearing from a leader.
    heartbeat_tick: the leader sends heartbeats every heartbeat_tick ticks.
    max_inflight: append messages a leader may have unacknowledged per follower.
    max_entries_per_msg / max_msg_bytes: caps on one AppendEntries (at least one entry is sent).
    snapshot_chunk_size: bytes of snapshot data per InstallSnapshot message.
    log_window_entries / log_window_bytes: with a LogReader (storage) given to the core,
        entries that are applied and durable are dropped from memory once the in-memory tail
        exceeds either cap (payload bytes); older entries are read back from storage for
        lagging followers. Without a reader the whole log after the snapshot stays in memory.
    linger_commit: a leader whose commit index advanced does not send followers an append
        with no entries just to tell them: the index rides on the next append with entries,
        and the runtime calls `RaftCore.flush_commit()` when its own short linger expires
        with none sent (`commit_owed`). Under load that is a message each way per follower
        and per entry fewer; off, the empty append goes out at once (etcd's behaviour).
    pre_vote: campaign only after a pre-vote round shows a win is possible (thesis 9.6).
    check_quorum: a leader steps down if it has not heard from a quorum within election_tick
        ticks. Independently of it, followers ignore vote requests for election_tick ticks
        after hearing from their leader (thesis 4.2.3; leadership transfer overrides this),
        and a node restarted with state ignores them for its first election_tick ticks (it
        may have granted a lease before it crashed).
    """

    election_tick: int = attrs.field(default=10, validator=_positive)
    heartbeat_tick: int = attrs.field(default=1, validator=_positive)
    pre_vote: bool = True
    check_quorum: bool = True
    linger_commit: bool = False
    max_inflight: int = attrs.field(default=256, validator=_positive)
    max_entries_per_msg: int = attrs.field(default=1024, validator=_positive)
    max_msg_bytes: int = attrs.field(default=1 << 20, validator=_positive)
    snapshot_chunk_size: int = attrs.field(default=1 << 20, validator=_positive)
    log_window_entries: int = attrs.field(default=1024, validator=_positive)
    log_window_bytes: int = attrs.field(default=1 << 20, validator=_positive)

    def __attrs_post_init__(self) -> None:
        if self.heartbeat_tick >= self.election_tick:
            raise ValueError(
                "raft config: heartbeat_tick must be smaller than election_tick "
                f"({self.heartbeat_tick} >= {self.election_tick})"
            )
