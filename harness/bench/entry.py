"""CPU per replicated op in the entry path alone, in one process (no sockets, no disk).

    python -m harness.bench.entry [-n OPS] [--batch 32] [--lag 60]

Entries of `--batch` SETs (random keys out of 100k, 100-byte values; each op's floor
`--lag` sequences behind it, as with that many clients in flight), timed with process CPU
time, best of 5:

    leader    build the items from the ops it holds, encode the entry, apply the ops held
    follower  decode the entry (as a follower does: `entry.decode_for_apply`), apply it

These are the parts of a replicated SET that grow with the ops per entry; the daemons'
figures (`harness.bench.cluster`) add the RESP server, Raft, ZeroMQ and the disk.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

from aspen.cluster import entry
from aspen.cluster.entry import Batch, OpItem, RequestId
from aspen.cluster.state import ReplicatedState
from aspen.kv.ops import WriteOp, normalised


def measure(n: int, batch: int, lag: int) -> dict[str, float]:
    """CPU microseconds per op for the leader's and a follower's share."""
    rng = random.Random(1)
    ops = [WriteOp([b"SET", b"key:%012d" % rng.randrange(100_000), b"x" * 100]) for _ in range(n)]
    starts = range(0, n - n % batch, batch)

    def items_of(lo: int) -> list[entry.Item]:
        out: list[entry.Item] = []
        for s in range(lo, lo + batch):
            op = normalised(ops[s])
            assert op is not None
            out.append(OpItem(RequestId(1, 7, s + 1), max(0, s + 1 - lag), op))
        return out

    encoded = [entry.encode_items(1000, items_of(lo)) for lo in starts]
    count = len(starts) * batch

    def leader() -> None:
        state = ReplicatedState()
        for k, lo in enumerate(starts):
            items = items_of(lo)
            entry.encode_items(1000, items)
            state.apply_batch(k + 1, Batch(1000, tuple(items)), (1, 7))

    def follower() -> None:
        state = ReplicatedState()
        for k, data in enumerate(encoded):
            state.apply_batch(k + 1, entry.decode_for_apply(data), (2, 1))

    def best(fn: Callable[[], None]) -> float:
        times = []
        for _ in range(5):
            t0 = time.process_time()
            fn()
            times.append(time.process_time() - t0)
        return min(times) / count * 1e6

    return {"leader_us": best(leader), "follower_us": best(follower)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--ops", type=int, default=64_000)
    parser.add_argument("--batch", type=int, default=32, help="ops per entry")
    parser.add_argument("--lag", type=int, default=60, help="floor distance (clients in flight)")
    args = parser.parse_args(argv)
    r = measure(args.ops, args.batch, args.lag)
    print(f"{args.batch} ops/entry: leader {r['leader_us']:.2f} us/op, "
          f"follower {r['follower_us']:.2f} us/op (CPU, best of 5)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
