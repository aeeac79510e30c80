"""In-process figures for the replication path's pure-CPU pieces (issue 20, round 3).

Three RaftCores in one thread, no I/O: per round the leader proposes one entry, and every
message crosses the wire codec (`aspen.raft.wire`) the way the runtime sends it; each core
runs ready()/advance() the way the driver does. Printed: thread CPU microseconds per
replicated entry (the whole group, and the leader's and one follower's share), and the wire
codec alone (encode + decode of one AppendEntries). Compare builds by running it twice:
`python -m harness.bench.raftcore` and `ASPEN_PURE=1 python -m harness.bench.raftcore`.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from aspen import _native
from aspen.raft import (
    AppendEntries,
    Entry,
    EntryKind,
    Membership,
    Message,
    RaftConfig,
    RaftCore,
    Role,
    decode_message,
    encode_message,
)


def _process(core: RaftCore, outbox: list[Message]) -> None:
    while core.has_ready():
        rd = core.ready()
        outbox.extend(rd.messages)
        outbox.extend(rd.persisted_messages)
        core.advance(rd)


class _Group:
    def __init__(self) -> None:
        config = RaftConfig(pre_vote=False, check_quorum=False)
        self.cores = {i: RaftCore(i, config, random.Random(i)) for i in (1, 2, 3)}
        self.cpu = dict.fromkeys(self.cores, 0.0)
        members = Membership(voters=frozenset(self.cores))
        for core in self.cores.values():
            core.bootstrap(members)
        # (a node started empty withholds its vote for a while: every core ticks)
        while not any(c.role is Role.LEADER for c in self.cores.values()):
            for core in self.cores.values():
                core.tick()
            self.settle()
        self.leader = next(i for i, c in self.cores.items() if c.role is Role.LEADER)
        self.follower = min(i for i in self.cores if i != self.leader)

    def settle(self) -> None:
        queue: list[Message] = []
        for i, core in self.cores.items():
            started = time.thread_time()
            _process(core, queue)
            self.cpu[i] += time.thread_time() - started
        while queue:
            msg = queue.pop(0)
            core = self.cores[msg.dst]
            started = time.thread_time()
            core.step(decode_message(encode_message(msg)))
            out: list[Message] = []
            _process(core, out)
            self.cpu[msg.dst] += time.thread_time() - started
            queue.extend(out)


def replicate(entries: int, payload: bytes) -> tuple[float, float, float]:
    """CPU us per entry: (all three cores, the leader, one follower)."""
    group = _Group()
    leader = group.cores[group.leader]
    group.cpu = dict.fromkeys(group.cores, 0.0)
    for _ in range(entries):
        started = time.thread_time()
        leader.propose(payload)
        group.cpu[group.leader] += time.thread_time() - started
        group.settle()
    per = {i: 1e6 * t / entries for i, t in group.cpu.items()}
    return sum(per.values()), per[group.leader], per[group.follower]


def codec(rounds: int, payload: bytes) -> float:
    """CPU us per encode + decode of one AppendEntries carrying one entry."""
    msg = AppendEntries(1, 2, 5, 100, 5, (Entry(101, 5, EntryKind.NORMAL, payload),), 100)
    started = time.thread_time()
    for _ in range(rounds):
        decode_message(encode_message(msg))
    return 1e6 * (time.thread_time() - started) / rounds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.bench.raftcore")
    parser.add_argument("--entries", type=int, default=5000)
    parser.add_argument("--size", type=int, default=1500, help="entry payload bytes")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    payload = b"x" * args.size
    rows = [replicate(args.entries, payload) for _ in range(args.rounds)]
    wire = [codec(args.entries * 4, payload) for _ in range(args.rounds)]
    print(f"build: {_native.MODE}; {args.entries} entries of {args.size} B, {args.rounds} rounds")
    for label, values in (
        ("group CPU us/entry", [r[0] for r in rows]),
        ("leader CPU us/entry", [r[1] for r in rows]),
        ("follower CPU us/entry", [r[2] for r in rows]),
        ("AppendEntries encode+decode us", wire),
    ):
        print(f"{label:32} median {statistics.median(values):7.1f}  "
              f"(min {min(values):.1f}, max {max(values):.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
