"""Deliberately broken Raft cores, for showing that the simulator's checks can fail.

They live only in test code: each subclasses the real core and overrides one of its
documented test seams (EarlyAckCore overrides `ready()` itself). Nothing in `aspen` can
reach them.
"""

from __future__ import annotations

from aspen.raft import Progress, RaftCore, Ready, RequestVote


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
