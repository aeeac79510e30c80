"""Raft's safety properties, checked as the simulation runs (each check is O(1) per event,
except Leader Completeness, which is O(log suffix) once per new leader).

* Election Safety: at most one leader per term.
* Vote safety: a node's durable vote never changes within a term (what Election Safety
  rests on; it catches a double vote even when the second candidate loses).
* Log Matching, incrementally: every persisted entry is recorded under (index, term) with
  its payload and the term of the entry before it. Two logs holding the same (index, term)
  must agree on both; by induction on the index that is the whole property, with no log
  comparisons.
* Leader Completeness: when a node becomes leader of term T, its log holds every entry that
  leaders of earlier terms had reported committed so far.
* State Machine Safety: no two nodes apply different entries at one index.
* Commit monotonicity: a node's commit index never goes back, not even across a restart
  relative to what it had applied; applies are contiguous and never beyond the durable commit.
"""

from __future__ import annotations

from collections.abc import Callable

from aspen.raft.types import Entry


class InvariantViolation(Exception):
    def __init__(self, check: str, message: str) -> None:
        super().__init__(f"{check}: {message}")
        self.check = check
        self.message = message


class Invariants:
    def __init__(self, *, check_votes: bool = True) -> None:
        self.check_votes = check_votes
        self.leader_of_term: dict[int, int] = {}
        self.vote_of: dict[tuple[int, int], int] = {}  # (node, term) -> vote
        self.by_index_term: dict[tuple[int, int], tuple[int, bytes, int | None]] = {}
        self.applied: dict[int, tuple[int, int, bytes]] = {}  # index -> (term, kind, data)
        self.max_applied = 0
        self.leader_commit: dict[int, int] = {}  # term -> highest commit its leader reported
        self.wiped: set[int] = set()  # nodes whose data dir was wiped at some point
        self.leader_checked: set[int] = set()

    # -- elections ------------------------------------------------------------------------
    def note_leader(self, node: int, term: int) -> bool:
        """Election Safety; returns True the first time a leader of `term` is seen."""
        prev = self.leader_of_term.get(term)
        if prev is None:
            self.leader_of_term[term] = node
            return True
        if prev != node:
            raise InvariantViolation(
                "election-safety", f"two leaders in term {term}: n{prev} and n{node}")
        return False

    def needs_completeness_check(self, term: int) -> bool:
        if term in self.leader_checked:
            return False
        self.leader_checked.add(term)
        return True

    def node_wiped(self, node: int) -> None:
        self.wiped.add(node)

    def vote_persisted(self, node: int, term: int, vote: int | None) -> None:
        if vote is None or not self.check_votes:
            return
        prev = self.vote_of.setdefault((node, term), vote)
        if prev != vote and node in self.wiped and self.leader_of_term.get(term) == vote:
            # A wiped node binding the term to the leader it follows (the vote-amnesia rule):
            # that leader has won already, the vote elects nobody.
            return
        if prev != vote:
            raise InvariantViolation(
                "vote-safety", f"n{node} voted for n{prev} and then n{vote} in term {term}")

    # -- logs -----------------------------------------------------------------------------
    def entries_persisted(self, node: int, entries: list[Entry], prev_term: int | None) -> None:
        table = self.by_index_term
        for e in entries:
            rec = (int(e.kind), e.data, prev_term)
            old = table.setdefault((e.index, e.term), rec)
            if old != rec and not (old[:2] == rec[:2] and (old[2] is None or prev_term is None)):
                raise InvariantViolation(
                    "log-matching",
                    f"n{node} holds entry {e.index} of term {e.term} = (kind {rec[0]}, prev term "
                    f"{rec[2]}, {rec[1][:40]!r}) but another node has (kind {old[0]}, prev term "
                    f"{old[2]}, {old[1][:40]!r})")
            prev_term = e.term

    def leader_commit_seen(self, term: int, commit: int) -> None:
        if commit > self.leader_commit.get(term, 0):
            self.leader_commit[term] = commit

    def check_leader_completeness(
        self, node: int, term: int, snap_index: int, log_term: Callable[[int], int | None]
    ) -> None:
        """`log_term(i)` is the term of the new leader's entry i (None if absent)."""
        bound = max((c for t, c in self.leader_commit.items() if t < term), default=0)
        bound = min(bound, self.max_applied)
        for i in range(snap_index + 1, bound + 1):
            rec = self.applied.get(i)
            if rec is None:
                continue
            have = log_term(i)
            if have != rec[0]:
                raise InvariantViolation(
                    "leader-completeness",
                    f"n{node} leads term {term} but its entry {i} has term {have}; entry {i} of "
                    f"term {rec[0]} was committed earlier")

    # -- state machines -------------------------------------------------------------------
    def entry_applied(self, node: int, e: Entry) -> None:
        rec = (e.term, int(e.kind), e.data)
        old = self.applied.setdefault(e.index, rec)
        if old != rec:
            raise InvariantViolation(
                "state-machine-safety",
                f"n{node} applied entry {e.index} of term {e.term} ({e.data[:40]!r}); another "
                f"node applied term {old[0]} ({old[2][:40]!r}) at that index")
        if e.index > self.max_applied:
            self.max_applied = e.index

    def snapshot_installed(self, node: int, index: int, term: int) -> None:
        old = self.applied.get(index)
        if old is not None and old[0] != term:
            raise InvariantViolation(
                "state-machine-safety",
                f"n{node} installed a snapshot at {index} of term {term}; entry {index} was "
                f"applied elsewhere with term {old[0]}")
