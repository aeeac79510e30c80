"""Randomized schedules over a small cluster, checking Raft's safety properties after every step.

A seeded mini-simulator (the full one lives in harness/sim): reordering, drops, duplicates,
partitions, crashes with restart from disk, compaction, membership changes and transfers.
"""

from __future__ import annotations

import random

import pytest

from aspen.raft import (
    NotLeader,
    ProposalDropped,
    RaftConfig,
    RaftCore,
    RequestVote,
    Role,
)

from .cluster import Cluster, CoreFactory


class Checker:
    def __init__(self, c: Cluster) -> None:
        self.c = c
        self.leaders: dict[int, int] = {}  # term -> leader id
        self.committed: dict[int, tuple[int, bytes]] = {}  # index -> (term, data)
        self.read_floor: dict[bytes, int] = {}  # token -> commit index when the read began
        self.answered: set[bytes] = set()

    def check(self) -> None:
        c = self.c
        for i, core in c.cores.items():
            if core.role is Role.LEADER:
                prev = self.leaders.setdefault(core.term, i)
                assert prev == i, f"two leaders in term {core.term}: {prev} and {i}"
            for e in c.applied[i]:
                got = self.committed.setdefault(e.index, (e.term, e.data))
                assert got == (e.term, e.data), f"node {i} applied a different entry {e.index}"
            assert core.commit_index <= core.last_index
            for rs in c.reads[i]:
                if rs.token in self.answered:
                    continue
                self.answered.add(rs.token)
                if rs.index is not None:
                    floor = self.read_floor[rs.token]
                    assert rs.index >= floor, f"stale read {rs} (committed {floor} before it)"
        # Leader lease: while a leader holds one, nobody leads a later term
        leaders = [x for j, x in c.cores.items() if x.role is Role.LEADER and j not in c.down]
        for x in leaders:
            if x.lease_remaining() > 0:
                newer = [y.id for y in leaders if y.term > x.term]
                assert not newer, f"lease of {x.id} (term {x.term}) broken by leaders {newer}"
        # Leader Completeness: every committed entry is in every later leader's log
        for core in c.cores.values():
            if core.role is not Role.LEADER:
                continue
            for index, (term, data) in self.committed.items():
                if index < core.first_index or term > core.term:
                    continue
                e = core.entries(index, index + 1)
                assert e and e[0].term == term and e[0].data == data, (
                    f"leader {core.id} (term {core.term}) lacks committed entry {index}"
                )
        # Log Matching on the highest common (index, term) of each pair
        cores = list(c.cores.values())
        for a in range(len(cores)):
            for b in range(a + 1, len(cores)):
                x, y = cores[a], cores[b]
                lo = max(x.first_index, y.first_index)
                hi = min(x.last_index, y.last_index)
                for idx in range(hi, lo - 1, -1):
                    if x.term_at(idx) == y.term_at(idx):
                        assert x.entries(lo, idx + 1) == y.entries(lo, idx + 1), (
                            f"log matching broken between {x.id} and {y.id} below {idx}"
                        )
                        break


def run_schedule(seed: int, steps: int, nodes: int = 3, factory: CoreFactory = RaftCore) -> Checker:
    rng = random.Random(seed)
    cfg = RaftConfig(
        election_tick=10,
        heartbeat_tick=2,
        max_inflight=rng.choice([1, 4, 64]),
        max_entries_per_msg=rng.choice([1, 3, 100]),
        snapshot_chunk_size=rng.choice([3, 64, 4096]),
        pre_vote=rng.random() < 0.8,
        check_quorum=rng.random() < 0.8,
        log_window_entries=rng.choice([1, 2, 1024]),  # tiny tails: entries are read back
        log_window_bytes=rng.choice([8, 1 << 20]),
    )
    c = Cluster(range(1, nodes + 1), config=cfg, seed=seed, factory=factory)
    spare = nodes + 1
    chk = Checker(c)
    counter = 0
    for _ in range(steps):
        r = rng.random()
        up = [i for i in c.ids if i not in c.down]
        if r < 0.45:
            for _ in range(rng.randint(1, 12)):
                if not c.queue:
                    break
                # mostly oldest-first with some reordering
                k = rng.randrange(min(len(c.queue), 4))
                m = c.queue.pop(k)
                roll = rng.random()
                if roll < 0.05:
                    continue  # dropped
                if roll < 0.08:
                    c.queue.append(m)  # duplicated
                if (m.src, m.dst) in c.cut or m.dst in c.down or m.dst not in c.cores:
                    continue
                c.cores[m.dst].step(m)
                c.process(m.dst)
        elif r < 0.70:
            for i in up:
                c.cores[i].tick()
                c.process(i)
        elif r < 0.80:
            leader = c.leader()
            if leader is not None:
                counter += 1
                try:
                    leader.propose(b"v%d" % counter)
                except (NotLeader, ProposalDropped):
                    pass
                c.process(leader.id)
        elif r < 0.83 and up:
            i = rng.choice(up)
            counter += 1
            token = b"r%d" % counter
            # linearizability: the read must see every write committed before it began
            chk.read_floor[token] = max(core.commit_index for core in c.cores.values())
            c.cores[i].read_index(token)
            c.process(i)
        elif r < 0.86:
            if c.down:
                c.restart(rng.choice(sorted(c.down)))
            elif len(up) > 1:
                victim = rng.choice(up)
                core = c.cores[victim]
                if rng.random() < 0.5 and core.has_ready():
                    # torn: the early messages left, the disk write never happened
                    rd = core.ready()
                    c._send(rd.messages)
                c.crash(victim)
        elif r < 0.89:
            if c.cut:
                c.heal()
            else:
                victim = rng.choice(c.ids)
                c.isolate(victim)
        elif r < 0.92 and up:
            i = rng.choice(up)
            core = c.cores[i]
            if core.applied_index > core.first_index:
                state = b"snap@%d" % core.applied_index
                meta = core.compact(core.applied_index, state)
                c.disks[i].compact(meta, state)
        elif r < 0.95:
            leader = c.leader()
            if leader is not None:
                m = leader.membership
                choice = rng.random()
                try:
                    if choice < 0.4 and spare <= nodes + 2:
                        c.add_node(spare)
                        leader.change_membership(m.voters, m.learners | {spare})
                        spare += 1
                    elif choice < 0.7 and m.learners:
                        x = rng.choice(sorted(m.learners))
                        leader.change_membership(m.voters | {x}, m.learners - {x})
                    elif len(m.voters) > 3:
                        x = rng.choice(sorted(m.voters))
                        leader.change_membership(m.voters - {x}, m.learners)
                except (ProposalDropped, NotLeader):
                    pass
                c.process(leader.id)
        else:
            leader = c.leader()
            if leader is not None:
                others = sorted(leader.membership.voters - {leader.id})
                if others:
                    leader.transfer_leadership(rng.choice(others))
                    c.process(leader.id)
        chk.check()
    # Liveness once the network heals: a leader appears and a new write commits everywhere.
    c.heal()
    for i in sorted(c.down):
        c.restart(i)
    for _ in range(300):
        c.tick()
        leader = c.leader()
        if leader is not None and leader.lead_transferee is None:
            break
    leader = c.leader()
    assert leader is not None, f"seed {seed}: no leader after healing"
    index = leader.propose(b"final")
    c.tick(n=30)
    chk.check()
    for i in leader.membership.voters:
        assert c.cores[i].applied_index >= index, f"seed {seed}: node {i} did not apply"
    return chk


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(24))
def test_random_schedules_are_safe_and_live(seed: int) -> None:
    run_schedule(seed, steps=2500, nodes=3 if seed % 2 else 5)


class _ReadWithoutQuorum(RaftCore):
    def _read_requires_quorum_check(self) -> bool:
        return False


class _VotesTwice(RaftCore):
    def _may_grant_vote(self, msg: RequestVote) -> bool:
        return msg.pre_vote or self.log.is_up_to_date(msg.last_log_index, msg.last_log_term)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("plant", "message"),
    [
        (_ReadWithoutQuorum, "stale read"),
        (_VotesTwice, "two leaders"),
    ],
)
def test_checks_catch_planted_bugs(plant: CoreFactory, message: str) -> None:
    """The checks above can fail: each planted bug is reported within a few seeds."""
    for seed in range(40):
        try:
            run_schedule(seed, steps=2500, nodes=3 if seed % 2 else 5, factory=plant)
        except AssertionError as exc:
            if message in str(exc):
                return
    pytest.fail(f"planted bug {plant.__name__} not detected in 40 seeds")
