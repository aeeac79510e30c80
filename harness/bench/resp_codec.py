"""Micro-benchmark of the RESP codec alone (no sockets): commands parsed and replies encoded/s.

    python -m harness.bench.resp_codec

Feeds redis-benchmark-shaped SET/GET requests in reads of 1 and of 16 commands (its -P 1 and
-P 16), and encodes the matching replies. Prints one line per case. CPU-bound, so less noisy
than the socket figures, but still shares the machine with everything else.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from aspen.resp.protocol import RequestParser, encode_into
from aspen.resp.values import OK


def set_command(i: int) -> bytes:
    key = b"key:%012d" % i
    return b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$3\r\nxxx\r\n" % (len(key), key)


def get_command(i: int) -> bytes:
    key = b"key:%012d" % i
    return b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(key), key)


def bench_parse(make: Callable[[int], bytes], per_read: int, total: int) -> float:
    reads = [b"".join(make(i * per_read + j) for j in range(per_read))
             for i in range(total // per_read)]
    parser = RequestParser()
    start = time.perf_counter()
    count = 0
    for data in reads:
        count += len(parser.feed(data))
    elapsed = time.perf_counter() - start
    assert count == total
    return total / elapsed


def bench_encode(replies: list[object], per_write: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(replies), per_write):
        out = bytearray()
        for reply in replies[i : i + per_write]:
            encode_into(out, reply, 2)
    return len(replies) / (time.perf_counter() - start)


def main() -> int:
    total = 160_000
    for name, make in (("SET", set_command), ("GET", get_command)):
        for per_read in (1, 16):
            rate = max(bench_parse(make, per_read, total) for _ in range(3))
            print(f"parse {name} {per_read:>2} per read: {rate:>12,.0f} commands/s")
    for name, reply in (("+OK", OK), ("bulk", b"xxx"), ("nil", None), ("int", 42)):
        rate = max(bench_encode([reply] * total, 16) for _ in range(3))
        print(f"encode {name:5} 16 per write: {rate:>12,.0f} replies/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
