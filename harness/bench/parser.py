"""Parse cost per command of the RESP request parser, for -P 16 style batches of SET/GET.

    python -m harness.bench.parser [--rounds 5] [--per-read 16]

Each case feeds redis-benchmark-shaped requests (key "key:%012d", 3-byte value), `--per-read`
commands per feed (the "pipe" case: SETs in 64 KB reads cut anywhere, like `redis-cli
--pipe`), and prints the best of `--rounds` as CPU nanoseconds per command (thread
time: steadier than wall time on a busy machine), for `aspen.resp.protocol.RequestParser` and,
if the `hiredis` package can be imported, for `hiredis.Reader` on the same bytes (a reference
point: it is not a request parser, see docs/benchmarks.md "RESP request parser").
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

from aspen.resp.protocol import RequestParser
from harness.bench.resp_codec import get_command, set_command


def _mixed(i: int) -> bytes:
    return set_command(i) if i % 2 else get_command(i)


def _reads(make: Callable[[int], bytes], per_read: int, total: int) -> list[bytes]:
    return [b"".join(make(i * per_read + j) for j in range(per_read))
            for i in range(total // per_read)]


def ns_per_command_ours(reads: list[bytes], total: int) -> float:
    parser = RequestParser()
    feed = parser.feed
    count = 0
    start = time.thread_time()
    for data in reads:
        count += len(feed(data))
    elapsed = time.thread_time() - start
    assert count == total, count
    return elapsed / total * 1e9


def ns_per_command_hiredis(reads: list[bytes], total: int) -> float:
    import hiredis

    reader = hiredis.Reader()
    feed, gets = reader.feed, reader.gets
    count = 0
    start = time.thread_time()
    for data in reads:
        feed(data)
        while (cmd := gets()) is not False:
            count += 1
            assert cmd
    elapsed = time.thread_time() - start
    assert count == total, count
    return elapsed / total * 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--per-read", type=int, default=16)
    ap.add_argument("--total", type=int, default=160_000)
    args = ap.parse_args()
    parsers: dict[str, Callable[[list[bytes], int], float]] = {"aspen": ns_per_command_ours}
    try:
        import hiredis  # noqa: F401

        parsers["hiredis.Reader"] = ns_per_command_hiredis
    except ImportError:
        print("(hiredis not importable: aspen's parser only)")
    print(f"{args.per_read} commands per feed, best of {args.rounds}; "
          f"load average {os.getloadavg()[0]:.1f}")
    makers = (("SET", set_command), ("GET", get_command), ("SET/GET", _mixed),
              ("pipe", set_command))
    for name, make in makers:
        if name == "pipe":  # redis-cli --pipe style: 64 KB reads that end mid-command
            stream = b"".join(set_command(i) for i in range(args.total))
            reads = [stream[i : i + 65536] for i in range(0, len(stream), 65536)]
            total = args.total
        else:
            reads = _reads(make, args.per_read, args.total)
            total = len(reads) * args.per_read
        for label, fn in parsers.items():
            best = min(fn(reads, total) for _ in range(args.rounds))
            print(f"{name:8} {label:15} {best:8.0f} ns/command  {1e9 / best:>12,.0f} commands/s")


if __name__ == "__main__":
    main()
