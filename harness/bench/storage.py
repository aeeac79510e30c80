"""Storage figures: append throughput per batch size (fsync on), snapshot write/read MB/s.

    python -m harness.bench.storage [--seconds 2] [--entry-size 100] [--keys 1000000]

Each append is what the node does once per Raft `ready()`: one batch of entries plus the
hard state, one transaction, one fsync. Prints a Markdown table for docs/benchmarks.md.
Figures are wall-clock on a shared machine: run it a few times and read the spread.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import cbor2

from aspen.raft.types import Entry, HardState, Membership, SnapshotMeta
from aspen.storage import LogStore, open_storage

BATCH_SIZES = (1, 10, 100, 1000)
BACKENDS = ("sqlite", "lmdb")


def bench_append(
    root: Path, backend: str, batch: int, entry_size: int, seconds: float
) -> dict[str, float]:
    path = root / f"{backend}-{batch}"
    data = bytes(range(256)) * (entry_size // 256 + 1)
    data = data[:entry_size]
    latencies: list[float] = []
    with open_storage(path, backend) as store:  # type: ignore[arg-type]
        index = 1
        elapsed = 0.0  # time inside append() only; building the entries is not storage's
        while elapsed < seconds or len(latencies) < 5:
            entries = [Entry(i, 1, data=data) for i in range(index, index + batch)]
            hs = HardState(1, 1, index - 1)
            t = time.perf_counter()
            store.append(entries, hs)
            latencies.append(time.perf_counter() - t)
            elapsed += latencies[-1]
            index += batch
    shutil.rmtree(path)
    n = len(latencies) * batch
    latencies.sort()
    return {
        "entries_s": n / elapsed,
        "mb_s": n * entry_size / elapsed / 1e6,
        "batches_s": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1e3,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1e3,
    }


def bench_fdatasync(root: Path, seconds: float) -> float:
    """The disk's floor: 100-byte append + fdatasync per call, no database at all."""
    path = root / "fsync-floor"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            os.write(fd, b"x" * 100)
            os.fdatasync(fd)
            n += 1
        return n / (time.perf_counter() - start)
    finally:
        os.close(fd)
        path.unlink()


def keyspace_blob(keys: int) -> bytes:
    """A CBOR map shaped like a keyspace snapshot: short keys, short string values."""
    return cbor2.dumps({b"key:%09d" % i: b"value-%d" % i for i in range(keys)})


def bench_snapshot(root: Path, backend: str, blob: bytes) -> dict[str, float]:
    path = root / f"{backend}-snap"
    mb = len(blob) / 1e6
    with open_storage(path, backend) as store:  # type: ignore[arg-type]
        store.append([Entry(1, 1)])
        t = time.perf_counter()
        _write_streamed(store, SnapshotMeta(1, 1, Membership(voters={1})), blob)
        write_s = time.perf_counter() - t
    with open_storage(path, backend) as store:  # type: ignore[arg-type]  # verifies the CRC
        t = time.perf_counter()
        loaded = store.load_snapshot()
        read_s = time.perf_counter() - t
        assert loaded is not None and loaded[1] == blob
        t = time.perf_counter()
        opened = store.open_snapshot()
        assert opened is not None
        with opened[1] as f:
            while f.read(1 << 20):
                pass
        stream_s = time.perf_counter() - t
    shutil.rmtree(path)
    return {"write_mb_s": mb / write_s, "read_mb_s": mb / read_s, "stream_mb_s": mb / stream_s}


def _write_streamed(store: LogStore, meta: SnapshotMeta, blob: bytes) -> None:
    view = memoryview(blob)
    with store.begin_snapshot(meta) as w:
        for off in range(0, len(view), 1 << 20):
            w.write(bytes(view[off : off + (1 << 20)]))


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f}, {os.cpu_count()} cores"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seconds", type=float, default=1.0, help="per (backend, batch, round)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved repetitions")
    p.add_argument("--entry-size", type=int, default=100, help="bytes of data per entry")
    p.add_argument("--keys", type=int, default=1_000_000, help="keys in the snapshot blob")
    p.add_argument("--dir", type=Path, default=None, help="where to write (default: a tmp dir)")
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="aspen-bench-storage-", dir=args.dir))
    try:
        print(f"append: {args.entry_size}-byte entries + hard state, one fsync per batch, "
              f"{args.seconds:g} s per measurement, in {root}\n")
        floor = bench_fdatasync(root, args.seconds)
        print(f"disk floor: {floor:,.0f} append+fdatasync/s on a plain file "
              f"({load_note()})\n")
        print(f"{args.rounds} interleaved rounds (backends alternate, so load spikes hit both); "
              "median and [min-max] over rounds\n")
        print("| backend | batch | entries/s | MB/s | batches (fsyncs)/s | p50 ms | p99 ms |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        results: dict[tuple[str, int], list[dict[str, float]]] = {}
        for _ in range(args.rounds):
            for batch in BATCH_SIZES:
                for backend in BACKENDS:
                    r = bench_append(root, backend, batch, args.entry_size, args.seconds)
                    results.setdefault((backend, batch), []).append(r)
        for backend in BACKENDS:
            for batch in BATCH_SIZES:
                rs = results[(backend, batch)]
                eps = sorted(r["entries_s"] for r in rs)

                def med(key: str, rs: list[dict[str, float]] = rs) -> float:
                    return statistics.median(r[key] for r in rs)

                print(f"| {backend} | {batch} | {med('entries_s'):,.0f} "
                      f"[{eps[0]:,.0f}-{eps[-1]:,.0f}] | {med('mb_s'):.2f} | "
                      f"{med('batches_s'):,.0f} | {med('p50_ms'):.2f} | {med('p99_ms'):.2f} |")
        print(f"\n({load_note()})")
        t = time.perf_counter()
        blob = keyspace_blob(args.keys)
        enc = time.perf_counter() - t
        t = time.perf_counter()
        cbor2.load(io.BytesIO(blob))
        dec = time.perf_counter() - t
        print(f"\nsnapshot: {args.keys:,} keys as one CBOR map = {len(blob) / 1e6:.1f} MB "
              f"(cbor2 encode {enc:.2f} s, decode {dec:.2f} s: the keyspace's cost, not "
              "storage's)\n")
        print(f"({load_note()})\n")
        print("| backend | write MB/s (temp+fsync+rename+dir fsync) | read MB/s (+CRC) | "
              "streamed read MB/s |")
        print("|---|---:|---:|---:|")
        for backend in BACKENDS:
            r = bench_snapshot(root, backend, blob)
            print(f"| {backend} | {r['write_mb_s']:.0f} | {r['read_mb_s']:.0f} | "
                  f"{r['stream_mb_s']:.0f} |", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
