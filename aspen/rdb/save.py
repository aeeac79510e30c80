"""SAVE, BGSAVE and LASTSAVE: this node's applied state as `dir`/`dbfilename`, an RDB file.

Per node and outside the log, as in Redis (each replica's file is its own). The state is
frozen by the keyspace's snapshot encoder (the CBOR a Raft snapshot is made of, taken in one
go on the event loop, so the file is the state at one applied index); turning it into RDB
runs in a thread, so neither command stalls the node: SAVE answers when the file is renamed
into place, BGSAVE at once. Expired keys are left out, as a loading Redis would drop them.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cbor2
import trio

from aspen.kv.dump import BadPayload
from aspen.kv.valuetypes import TYPES_BY_NAME
from aspen.rdb.writer import Item, write_rdb
from aspen.resp.server import Deferred
from aspen.resp.values import OK, Error, SimpleString

log = logging.getLogger("aspen.rdb")

IN_PROGRESS = Error("ERR Background save already in progress")
SYNTAX = Error("ERR syntax error")


def _container_length(f: io.BytesIO, major: int) -> int:
    """The length in a CBOR map/array header (definite length, as cbor2 writes them)."""
    first = f.read(1)[0]
    if first >> 5 != major:
        raise ValueError("not an Aspen keyspace snapshot")
    info = first & 0x1F
    if info < 24:
        return info
    if info > 27:
        raise ValueError("indefinite-length CBOR in a keyspace snapshot")
    return int.from_bytes(f.read(1 << (info - 24)), "big")


def frozen_items(snapshot: bytes, now_ms: int) -> tuple[Iterator[Item | int], list[bytes]]:
    """The live keys of a keyspace snapshot (Keyspace.snapshot's CBOR) and its libraries;
    the list of libraries is filled when the keys have all been read (it follows them).
    Database 0's keys come first; each other database's ("dbs") after its index (an int:
    `write_rdb`'s SELECTDB).

    Decoded one key at a time: decoding the whole snapshot at once would hold a second copy
    of every value while the file is written (it doubled the node's memory at 1M keys)."""
    f = io.BytesIO(snapshot)
    decoder = cbor2.CBORDecoder(f)
    libraries: list[bytes] = []

    def keys() -> Iterator[Item]:
        for _ in range(_container_length(f, 4)):
            key, tag, payload, deadline, *_ = decoder.decode()
            if deadline is not None and deadline < now_ms:
                continue
            value = payload if tag == "string" else TYPES_BY_NAME[tag].load(payload)
            yield key, value, deadline

    def items() -> Iterator[Item | int]:
        for _ in range(_container_length(f, 5)):  # the top-level map, Keyspace.snapshot's
            name = decoder.decode()
            if name == "keys":
                yield from keys()
            elif name == "dbs":  # the other databases: a map each, "db" first
                for _ in range(_container_length(f, 4)):
                    for _ in range(_container_length(f, 5)):
                        field = decoder.decode()
                        if field == "db":
                            yield decoder.decode()
                        elif field == "keys":
                            yield from keys()
                        else:
                            decoder.decode()
            elif name == "scripting":
                libraries.extend(code for _n, code in decoder.decode().get("libraries", []))
            else:
                decoder.decode()

    return items(), libraries


def write_snapshot(path: Path, snapshot: bytes, now_ms: int) -> int:
    items, libraries = frozen_items(snapshot, now_ms)
    return write_rdb(path, items, functions=libraries, now_ms=now_ms)


class Saver:
    """One node's RDB saving: `snapshot` freezes the keyspace, `path` is dir/dbfilename."""

    def __init__(self, snapshot: Callable[[], bytes], path: Callable[[], Path],
                 clock: Callable[[], float] = time.time) -> None:
        self._snapshot = snapshot
        self._path = path
        self._clock = clock
        self.last_save = int(clock())  # Redis: the start time until the first save
        self.last_status = "ok"
        self.last_error = ""
        self.in_progress = False
        self.keys_saved = 0

    def _run(self, frozen: bytes) -> None:
        try:
            self.keys_saved = write_snapshot(self._path(), frozen, int(self._clock() * 1000))
            self.last_save = int(self._clock())
            self.last_status, self.last_error = "ok", ""
        except (OSError, BadPayload, ValueError) as exc:
            reason = ("a value of a type RDB cannot hold"
                      if isinstance(exc, BadPayload) else str(exc))
            self.last_status, self.last_error = "err", reason
            log.warning("saving %s failed: %s", self._path(), reason)
        finally:
            self.in_progress = False

    def _start(self) -> bytes:
        self.in_progress = True
        try:
            return self._snapshot()
        except BaseException:
            self.in_progress = False
            raise

    def cmd_save(self, argv: list[bytes]) -> object:
        if self.in_progress:
            return IN_PROGRESS
        frozen = self._start()

        async def wait() -> object:
            await trio.to_thread.run_sync(self._run, frozen)
            if self.last_status != "ok":
                return Error(f"ERR saving the RDB file failed: {self.last_error}")
            return OK

        return Deferred(wait)

    def cmd_bgsave(self, argv: list[bytes]) -> object:
        if len(argv) > 2 or (len(argv) == 2 and argv[1].lower() != b"schedule"):
            return SYNTAX
        if self.in_progress:
            return IN_PROGRESS  # (SCHEDULE only waits for an AOF rewrite, which Aspen has not)
        frozen = self._start()
        threading.Thread(target=self._run, args=(frozen,), name="aspen-bgsave",
                         daemon=True).start()
        return SimpleString("Background saving started")

    def cmd_lastsave(self, argv: list[bytes]) -> object:
        return self.last_save

    def info_fields(self) -> list[tuple[str, str]]:
        return [
            ("rdb_bgsave_in_progress", str(int(self.in_progress))),
            ("rdb_last_save_time", str(self.last_save)),
            ("rdb_last_bgsave_status", self.last_status),
            ("rdb_saved_keys", str(self.keys_saved)),
        ]

