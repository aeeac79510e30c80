"""`aspen import`: an RDB file or a live redis-server into a running Aspen cluster.

Every key goes through the cluster's Raft log as `RESTORE key abs-ms payload ABSTTL REPLACE`,
in batches of one MULTI/EXEC each (one log entry per batch); payloads are
re-encoded by DUMP's encoder from the decoded value, so any encoding a 6.2/7.0 server wrote
(ziplists included) lands as a value Aspen holds. Function libraries follow as
FUNCTION LOAD REPLACE.

A file is read twice: a first pass counts the keys (the progress bar's total) and finds the
values Aspen cannot hold (streams, modules) before anything is written, so a refused import
writes nothing; `--skip-unsupported` imports the rest and names what it skipped.

A live server is read with SCAN + DUMP + PTTL (a point-in-time copy per key, not of the whole
keyspace: writes to the source during the copy may or may not be seen). Following a master
with PSYNC until a cut-over would be the better tool for a live migration; it is not built.

Databases: every record keeps the number its SELECTDB gave it and goes to the same database
of the cluster (`target_db`): a batch switches with SELECT (inside its MULTI) where the
database changes. A live source's keys go to the database the URL names.
"""

from __future__ import annotations

import sys
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TextIO

import attrs

from aspen.kv.dump import BadPayload, Reader, crc64, payload_of
from aspen.rdb.client import ReplyError, RespConnection
from aspen.rdb.reader import RdbParser
from aspen.rdb.values import TYPE_NAMES, Unsupported, read_any


class ImportError_(Exception):
    """The import cannot go on; the message is for the operator."""


@attrs.define
class Counts:
    total: int = 0
    imported: int = 0
    with_ttl: int = 0
    expired: int = 0
    unsupported: list[tuple[bytes, str]] = attrs.Factory(list)
    functions: int = 0
    other_dbs: dict[int, int] = attrs.Factory(dict)
    seconds: float = 0.0


def target_db(db: int) -> int:
    """The Aspen database a source database's keys go to: the same one."""
    return db


class Progress:
    """A one-line progress bar on a terminal (or a line every 10% elsewhere)."""

    def __init__(self, total: int, out: TextIO = sys.stderr) -> None:
        self.total = max(total, 1)
        self.out = out
        self.start = time.monotonic()
        self.tty = out.isatty()
        self._last = 0.0
        self._last_tenth = -1

    def update(self, done: int, final: bool = False) -> None:
        now = time.monotonic()
        frac = min(done / self.total, 1.0)
        rate = done / max(now - self.start, 1e-9)
        if self.tty:
            if not final and now - self._last < 0.1:
                return
            bar = "#" * int(frac * 30)
            self.out.write(f"\r[{bar:<30}] {frac:4.0%} {done}/{self.total} keys "
                           f"{rate:,.0f} keys/s")
            if final:
                self.out.write("\n")
        else:
            tenth = int(frac * 10)
            if tenth == self._last_tenth and not final:
                return
            self._last_tenth = tenth
            self.out.write(f"import: {frac:4.0%} {done}/{self.total} keys {rate:,.0f} keys/s\n")
        self._last = now
        self.out.flush()


Restore = tuple[bytes, object, int | None]  # key, value, absolute expiry ms
"""A key to restore; in a stream of them a bare int n means "into database n from here on"."""


def _restore_commands(items: Iterable[Restore | int]) -> Iterator[list[bytes]]:
    for item in items:
        if isinstance(item, int):
            yield [b"SELECT", str(item).encode()]
            continue
        key, value, expire_ms = item
        yield [b"RESTORE", key, str(expire_ms or 0).encode(), payload_of(value), b"ABSTTL",
               b"REPLACE"]


def _send(conn: RespConnection, commands: list[list[bytes]]) -> None:
    """One batch as one MULTI/EXEC: one log entry, applied whole (and ~35% faster than the
    same commands pipelined one by one)."""
    replies = conn.pipeline([[b"MULTI"], *commands, [b"EXEC"]])
    results = replies[-1]
    if isinstance(results, ReplyError) or not isinstance(results, list):
        queued = [r for r in replies[1:-1] if isinstance(r, ReplyError)]
        raise ImportError_(f"the cluster refused a batch: {queued[0] if queued else results}")
    for argv, reply in zip(commands, results, strict=True):
        if isinstance(reply, ReplyError) and argv[0] == b"SELECT":
            db = argv[1].decode()
            raise ImportError_(f"the cluster has no database {db} ({reply}): see `databases`")
        if isinstance(reply, ReplyError):
            key = argv[1].decode(errors="replace")
            raise ImportError_(f"the cluster refused key {key!r}: {reply}")


def _load_functions(conn: RespConnection, libraries: list[bytes]) -> None:
    for code in libraries:
        try:
            conn.call(b"FUNCTION", b"LOAD", b"REPLACE", code)
        except ReplyError as exc:
            raise ImportError_(f"the cluster refused a function library: {exc}") from None


def _pump(conn: RespConnection, items: Iterable[Restore | int], counts: Counts, batch: int,
          progress: Progress | None, seen: Callable[[], int]) -> None:
    pending: list[list[bytes]] = []
    for command in _restore_commands(items):
        pending.append(command)
        if len(pending) >= batch:
            _send(conn, pending)
            counts.imported += _restores(pending)
            pending = []
            if progress:
                progress.update(seen())
    if pending:
        _send(conn, pending)
        counts.imported += _restores(pending)
    if progress:
        progress.update(seen(), final=True)


def _restores(commands: list[list[bytes]]) -> int:
    return sum(1 for c in commands if c[0] == b"RESTORE")


def import_file(path: Path, conn: RespConnection, *, batch: int = 500,
                skip_unsupported: bool = False, progress_out: TextIO | None = sys.stderr,
                now_ms: int | None = None) -> Counts:
    started = time.monotonic()
    data = path.read_bytes()
    counts = Counts()
    now = int(time.time() * 1000) if now_ms is None else now_ms
    first = RdbParser(data)
    for record in first.records():  # pass 1: count, find what cannot be imported
        counts.total += 1
        if record.unsupported:
            counts.unsupported.append((record.key, record.unsupported))
    if counts.unsupported and not skip_unsupported:
        raise ImportError_(_unsupported_text(counts.unsupported) + "; nothing was imported "
                           "(--skip-unsupported imports the rest)")
    progress = Progress(counts.total, progress_out) if progress_out else None
    seen = 0

    def live() -> Iterator[Restore | int]:
        nonlocal seen
        db = -1
        for record in RdbParser(data).records(check=False):
            seen += 1
            if record.value is None:
                continue
            if target_db(record.db) != db:
                db = target_db(record.db)
                yield db  # (the connection may be anywhere: the first key selects too)
            if record.db:
                counts.other_dbs[record.db] = counts.other_dbs.get(record.db, 0) + 1
            if record.expire_ms is not None:
                if record.expire_ms <= now:
                    counts.expired += 1  # as a loading redis-server drops them
                    continue
                counts.with_ttl += 1
            yield record.key, record.value, record.expire_ms

    _load_functions(conn, first.functions)
    counts.functions = len(first.functions)
    _pump(conn, live(), counts, batch, progress, lambda: seen)
    counts.seconds = time.monotonic() - started
    return counts


def _unsupported_text(found: list[tuple[bytes, str]]) -> str:
    shown = ", ".join(f"{k.decode(errors='replace')!r} ({what})" for k, what in found[:10])
    more = f" and {len(found) - 10} more" if len(found) > 10 else ""
    return f"{len(found)} key(s) of a type Aspen cannot hold: {shown}{more}"


# -------------------------------------------------------------------------- a live server


@attrs.frozen
class Source:
    host: str
    port: int
    password: str | None
    username: str | None
    db: int


def parse_url(url: str) -> Source:
    """redis://[[user]:password@]host[:port][/db]"""
    u = urllib.parse.urlsplit(url)
    if u.scheme != "redis" or not u.hostname:
        raise ImportError_(f"not a redis:// URL: {url!r} (rediss:// is not supported)")
    path = u.path.strip("/")
    if path and not path.isdigit():
        raise ImportError_(f"the URL's path must be a database number, got {path!r}")
    return Source(u.hostname, u.port or 6379,
                  urllib.parse.unquote(u.password) if u.password else None,
                  urllib.parse.unquote(u.username) if u.username else None,
                  int(path) if path else 0)


def decode_dump(payload: bytes) -> object:
    """A DUMP payload of redis-server 6.2-7.2 (RDB versions <= 11) as a value."""
    if len(payload) < 10 or crc64(payload[:-8]) != int.from_bytes(payload[-8:], "little"):
        raise BadPayload
    r = Reader(payload[:-10])
    return read_any(r, r.byte())


def connect_source(src: Source) -> RespConnection:
    conn = RespConnection(src.host, src.port)
    if src.password is not None:
        conn.call(b"AUTH", *([src.username] if src.username else []), src.password)
    if src.db:
        conn.call(b"SELECT", src.db)
    return conn


def import_live(src: Source, conn: RespConnection, *, batch: int = 500,
                skip_unsupported: bool = False, progress_out: TextIO | None = sys.stderr,
                scan_count: int = 1000) -> Counts:
    """SCAN the source and copy each key (DUMP + PTTL) into the cluster."""
    started = time.monotonic()
    counts = Counts()
    with connect_source(src) as source:
        total = source.call(b"DBSIZE")
        assert isinstance(total, int)
        progress = Progress(total, progress_out) if progress_out else None
        libraries = _source_libraries(source)
        _load_functions(conn, libraries)
        counts.functions = len(libraries)
        cursor = b"0"
        pending: list[list[bytes]] = [[b"SELECT", str(target_db(src.db)).encode()]]
        while True:
            reply = source.call(b"SCAN", cursor, b"COUNT", scan_count)
            assert isinstance(reply, list)
            cursor, keys = reply[0], reply[1]
            replies = source.pipeline([c for k in keys for c in ([b"DUMP", k], [b"PTTL", k])])
            now = int(time.time() * 1000)
            for i, key in enumerate(keys):
                payload, pttl = replies[2 * i], replies[2 * i + 1]
                counts.total += 1
                if payload is None or pttl == -2:
                    continue  # gone since SCAN saw it
                if not isinstance(payload, bytes) or not isinstance(pttl, int):
                    raise ImportError_(f"DUMP/PTTL of {key!r} failed: {payload!r} {pttl!r}")
                try:
                    value = decode_dump(payload)
                except Unsupported as exc:
                    counts.unsupported.append((key, exc.what))
                    continue
                except (BadPayload, IndexError, ValueError):
                    kind = TYPE_NAMES.get(payload[0], f"RDB type {payload[0]}")
                    raise ImportError_(f"cannot decode the DUMP of {key!r} ({kind})") from None
                expire = now + pttl if pttl >= 0 else None
                counts.with_ttl += expire is not None
                pending.extend(_restore_commands([(key, value, expire)]))
            if counts.unsupported and not skip_unsupported:
                raise ImportError_(_unsupported_text(counts.unsupported) + "; the keys before "
                                   "it may have been copied (--skip-unsupported skips them)")
            if len(pending) >= batch or cursor == b"0":
                if pending:
                    _send(conn, pending)
                    counts.imported += _restores(pending)
                pending = []
                if progress:
                    progress.update(counts.total, final=cursor == b"0")
            if cursor == b"0":
                break
    counts.seconds = time.monotonic() - started
    return counts


def _source_libraries(source: RespConnection) -> list[bytes]:
    try:
        reply = source.call(b"FUNCTION", b"LIST", b"WITHCODE")
    except ReplyError:
        return []  # a server before 7.0: no functions
    out = []
    for lib in reply if isinstance(reply, list) else []:
        fields = dict(zip(lib[::2], lib[1::2], strict=True))
        code = fields.get(b"library_code")
        if isinstance(code, bytes):
            out.append(code)
    return out


def summary(counts: Counts) -> str:
    rate = counts.imported / max(counts.seconds, 1e-9)
    parts = [f"imported {counts.imported} keys ({counts.with_ttl} with a TTL) in "
             f"{counts.seconds:.1f} s ({rate:,.0f} keys/s)"]
    if counts.expired:
        parts.append(f"{counts.expired} already expired, not imported")
    if counts.functions:
        parts.append(f"{counts.functions} function librar{'y' if counts.functions == 1 else 'ies'}")
    if counts.unsupported:
        parts.append("skipped " + _unsupported_text(counts.unsupported))
    for db, n in sorted(counts.other_dbs.items()):
        parts.append(f"{n} keys into db {target_db(db)}")
    return "; ".join(parts)
