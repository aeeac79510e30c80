"""A storage writer for crash tests: random operations, each reported once acknowledged.

Run as `python -m harness.storage_writer DIR BACKEND SEED`. It opens the store, continues
from whatever is there, and forever picks an operation (append batches of random sizes with
or without hard state, hard state alone, truncations, compactions, streamed snapshots).
Before each call it prints `{"begin": op}`, after the call returns `{"ok": true}`, one JSON
line each, flushed: the test that SIGKILLs it therefore knows which operations were
acknowledged and which single one may have been in flight.

Entry and snapshot contents are pure functions of their position (`entry_payload`,
`snapshot_chunks`) with their own checksum, so a reader can tell an intact entry from a
partial or foreign one.
"""

from __future__ import annotations

import hashlib
import json
import random
import struct
import sys
import zlib
from collections.abc import Iterator
from typing import Any

from aspen.raft.types import Entry, EntryKind, HardState, Membership, SnapshotMeta
from aspen.storage import LogStore, open_storage

MEMBERS = Membership(voters={1, 2, 3})
_HEAD = struct.Struct(">QQI")  # index, term, body length


def entry_payload(index: int, term: int) -> bytes:
    """Deterministic, self-checking content; mostly small, sometimes 64 KiB."""
    seed = hashlib.blake2b(f"{index}/{term}".encode(), digest_size=16).digest()
    size = 65536 if seed[0] == 0 else 8 + seed[1] * 2
    body = (seed * (size // 16 + 1))[:size]
    head = _HEAD.pack(index, term, size)
    return head + body + struct.pack(">I", zlib.crc32(head + body))


def payload_is_intact(index: int, term: int, data: bytes) -> bool:
    return data == entry_payload(index, term)


def snapshot_chunks(index: int, term: int, size: int) -> Iterator[bytes]:
    seed = hashlib.blake2b(f"snap {index}/{term}".encode(), digest_size=64).digest()
    block = seed * 1024  # 64 KiB
    left = size
    while left > 0:
        chunk = block[: min(left, len(block))]
        left -= len(chunk)
        yield chunk


def snapshot_payload(index: int, term: int, size: int) -> bytes:
    return b"".join(snapshot_chunks(index, term, size))


class Writer:
    def __init__(self, store: LogStore, rng: random.Random) -> None:
        self.store = store
        self.rng = rng
        last = store.last_index()
        self.term = max(1, store.term(last), store.hard_state().term)

    def report(self, obj: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    def step(self) -> None:
        s, rng = self.store, self.rng
        first, last = s.first_index(), s.last_index()
        roll = rng.random()
        if roll < 0.70:
            n = rng.choice([rng.randint(1, 5), rng.randint(10, 100), rng.randint(500, 2000)])
            start = last + 1
            if rng.random() < 0.1 and last >= first:  # a new leader overwrites a suffix
                start = rng.randint(first, last + 1)
                self.term += 1
            hs: list[int] | None = None
            if rng.random() < 0.5:
                hs = [self.term, rng.randint(1, 3), rng.randint(0, start + n - 1)]
            op: dict[str, Any] = {"op": "append", "first": start, "n": n, "term": self.term,
                                  "hs": hs}
            entries = [
                Entry(i, self.term, EntryKind.NORMAL, entry_payload(i, self.term))
                for i in range(start, start + n)
            ]
            self.report({"begin": op})
            s.append(entries, HardState(*hs) if hs else None)
        elif roll < 0.78:
            vote = rng.choice([None, 1, 2, 3])
            op = {"op": "hard_state", "hs": [self.term, vote, rng.randint(0, last)]}
            self.report({"begin": op})
            s.set_hard_state(HardState(*op["hs"]))
        elif roll < 0.83:
            at = rng.randint(first, last + 1)
            op = {"op": "truncate", "from": at}
            self.report({"begin": op})
            s.truncate_suffix(at)
            self.term += 1  # later entries at these indices must differ in term
        elif roll < 0.88:
            through = rng.randint(first - 1, last)
            op = {"op": "compact", "through": through}
            self.report({"begin": op})
            s.compact(through)
        else:
            current = s.snapshot_meta()
            # Never behind the compaction point: those entries are committed, and a snapshot
            # there with another term is something Raft cannot produce.
            lo = max(current.index if current else 1, first - 1, 1)
            index = rng.randint(lo, last + 5)
            if first - 1 <= index <= last and rng.random() < 0.8:
                term = max(1, s.term(index))
            else:
                self.term += 1
                term = self.term
            size = rng.choice([rng.randint(0, 4096), rng.randint(1 << 20, 3 << 20)])
            op = {"op": "snapshot", "index": index, "term": term, "size": size}
            self.report({"begin": op})
            with s.begin_snapshot(SnapshotMeta(index, term, MEMBERS)) as w:
                for chunk in snapshot_chunks(index, term, size):
                    w.write(chunk)
        self.report({"ok": True})


def main(argv: list[str]) -> None:
    directory, backend, seed = argv[0], argv[1], int(argv[2])
    store = open_storage(directory, backend)  # type: ignore[arg-type]
    writer = Writer(store, random.Random(seed))
    writer.report({"ready": True})
    while True:
        writer.step()


if __name__ == "__main__":
    main(sys.argv[1:])
