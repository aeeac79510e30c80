"""Deliberately broken Raft cores and drivers, for showing that the simulator's checks can fail.

They live only in test code: each subclasses the real core (or the real driver,
`aspen.raft.driver.Driver`, which the runtime runs too) and overrides one of its documented
test seams (EarlyAckCore overrides `ready()` itself). Nothing in `aspen` can reach them.
"""

from __future__ import annotations

from aspen.raft import Entry, Message, Progress, RaftCore, Ready, RequestVote
from aspen.raft.driver import Driver, Persist


class DoubleVoteCore(RaftCore):
    """Grants every real vote request whose log is up to date: votes twice in a term."""

    def _may_grant_vote(self, msg: RequestVote) -> bool:
        if msg.pre_vote:
            return super()._may_grant_vote(msg)
        return self.log.is_up_to_date(msg.last_log_index, msg.last_log_term)


class OldTermCommitCore(RaftCore):
    """Commits entries of earlier terms by counting replicas (the Figure 8 bug, §5.4.2)."""

    def _may_commit_at(self, index: int) -> bool:
        return True


class UnconfirmedReadCore(RaftCore):
    """Serves ReadIndex reads without a heartbeat round confirming it still leads."""

    def _read_requires_quorum_check(self) -> bool:
        return False


class EarlyAckCore(RaftCore):
    """Sends votes and append acks before the Ready holding them is durable."""

    def ready(self) -> Ready:
        rd = super().ready()
        rd.messages = rd.messages + rd.persisted_messages
        rd.persisted_messages = []
        return rd


class ForgetfulCore(RaftCore):
    """A node that starts with an empty data dir votes at once: a wiped voter votes a
    second time in a term it had voted in (no vote-amnesia rule)."""

    def _guards_lost_votes(self) -> bool:
        return False


class NoIncarnationCore(RaftCore):
    """The leader does not tell a follower's lives apart: a wiped follower's rejections
    below its old match look stale forever and it never catches up from that leader."""

    def _check_incarnation(self, peer: int, incarnation: int, pr: Progress) -> bool:
        return True


# -- planted bugs in the driver (the sequence the runtime and the simulator share) ----------


class EarlyAckDriver(Driver):
    """Sends votes and append acks with the Ready's other messages, before its fsync."""

    def outgoing(self, rd: Ready) -> tuple[list[Message], list[Message]]:
        return rd.messages + rd.persisted_messages, []


class ApplyBeforeCommitDriver(Driver):
    """Applies the entries of a Ready once they are durable HERE, without waiting for a
    majority: the leader acknowledges a write that a crash or a new leader can still lose."""

    handed = -1  # the last index handed to apply (-1: not known yet)

    def split_committed(self, rd: Ready) -> tuple[list[Entry], list[Entry]]:
        early, later = super().split_committed(rd)
        if self.handed < 0:
            self.handed = self.core.applied_index
        if early or later:
            self.handed = max(self.handed, (later or early)[-1].index)
        extra = [e for e in rd.entries if e.index > self.handed]
        if extra and extra[0].index == self.handed + 1:
            self.handed = extra[-1].index
            return early, later + extra
        return early, later


class LazyVoteDriver(Driver):
    """Extends the lazy commit-index write to every hard state without entries: a vote is
    sent before it is durable (and a crash forgets it)."""

    def persist_step(self, rd: Ready) -> Persist | None:
        if rd.hard_state is not None and not rd.entries:
            self.lazy_hs = rd.hard_state
            return None
        return super().persist_step(rd)
