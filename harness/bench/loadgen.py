"""A Python load generator: many raw-RESP connections, a mixed read/write workload.

    python -m harness.bench.loadgen --port 6379 --seconds 5 --connections 50

Each connection runs a closed loop (send one command, wait for its reply) for `seconds`,
choosing GET with probability `read_ratio` and SET otherwise, on keys drawn from `keys`
distinct names (a SET of a fresh value of `size` bytes). Latency is measured per command from
send to complete reply. The generator is one asyncio process: on this 2-core machine it
competes with the servers, so its own CPU time is reported; a generator near 100% of a core
is the bottleneck, not the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import sys
import time

import attrs

from harness.bench.stats import summarize
from harness.resp_wire import command as encode_command

__all__ = ["MixedResult", "RespConn", "encode_command", "run_mixed"]


class RespError(Exception):
    """The server answered with an error reply."""


class RespConn:
    """One asyncio RESP2 connection reading one reply per command (strings, errors, ints)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int, timeout: float = 5.0) -> RespConn:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port), timeout)
        return cls(reader, writer)

    async def call(self, payload: bytes) -> bytes | int | None:
        self.writer.write(payload)
        return await self.read_reply()

    async def read_reply(self) -> bytes | int | None:
        line = await self.reader.readuntil(b"\r\n")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RespError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = await self.reader.readexactly(n + 2)
            return data[:-2]
        raise RespError(f"unexpected reply type {line[:20]!r}")

    def close(self) -> None:
        self.writer.close()


@attrs.frozen
class MixedResult:
    connections: int
    seconds: float
    read_ratio: float
    ops: int
    errors: int
    ops_per_s: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    client_cpu_percent: float

    def as_dict(self) -> dict[str, float | int]:
        return attrs.asdict(self)


async def _worker(port: int, deadline: float, read_ratio: float, keys: int, value: bytes,
                  seed: int, latencies: list[float], errors: list[int]) -> None:
    rng = random.Random(seed)
    conn = await RespConn.open(port)
    clock = time.perf_counter
    gets = [encode_command(b"GET", b"key:%09d" % i) for i in range(min(keys, 4096))]
    try:
        while clock() < deadline:
            i = rng.randrange(keys)
            if rng.random() < read_ratio:
                payload = gets[i] if i < len(gets) else encode_command(b"GET", b"key:%09d" % i)
            else:
                payload = encode_command(b"SET", b"key:%09d" % i, value)
            t0 = clock()
            try:
                await conn.call(payload)
            except RespError:
                errors[0] += 1
                continue
            latencies.append(clock() - t0)
    finally:
        conn.close()


async def _run(port: int, connections: int, seconds: float, read_ratio: float, keys: int,
               size: int, seed: int) -> MixedResult:
    value = (b"v" * size)[:size]
    latencies: list[float] = []
    errors = [0]
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    deadline = start + seconds
    await asyncio.wait_for(
        asyncio.gather(*(_worker(port, deadline, read_ratio, keys, value, seed + i, latencies,
                                 errors) for i in range(connections))),
        seconds + 30,
    )
    wall = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    if not latencies:
        raise RuntimeError(f"no command succeeded in {seconds}s ({errors[0]} errors)")
    s = summarize(latencies)
    return MixedResult(
        connections=connections, seconds=round(wall, 3), read_ratio=read_ratio,
        ops=len(latencies), errors=errors[0], ops_per_s=len(latencies) / wall,
        p50_ms=s["p50"] * 1e3, p99_ms=s["p99"] * 1e3, p999_ms=s["p999"] * 1e3,
        client_cpu_percent=100 * cpu / wall,
    )


def run_mixed(port: int, *, connections: int = 50, seconds: float = 5.0,
              read_ratio: float = 0.8, keys: int = 10_000, size: int = 100,
              seed: int = 1) -> MixedResult:
    """Run the mixed workload against 127.0.0.1:port (blocking)."""
    return asyncio.run(_run(port, connections, seconds, read_ratio, keys, size, seed))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--connections", type=int, default=50)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--read-ratio", type=float, default=0.8)
    p.add_argument("--keys", type=int, default=10_000)
    p.add_argument("--size", type=int, default=100)
    args = p.parse_args(argv)
    result = run_mixed(args.port, connections=args.connections, seconds=args.seconds,
                       read_ratio=args.read_ratio, keys=args.keys, size=args.size)
    print(json.dumps(result.as_dict(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
