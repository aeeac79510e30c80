"""Undo for a script that ran out of its instruction budget.

Redis never rolls a script back (a script that fails half way keeps its writes), and Aspen
keeps that for ordinary errors. A script stopped by the budget is different: it was stopped
by Aspen, not by its own logic, so whatever it wrote is undone. Before a script's first write
to a key, the key's value and deadline are saved; a keyless write (FLUSHALL, FLUSHDB) saves
the whole keyspace once (and so do MOVE and COPY, which may write in another database; a
key is saved with the database the script had SELECTed). Every replica runs the same script
to the same instruction, so every replica undoes the same writes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aspen.kv import commands as cmdtable

if TYPE_CHECKING:
    from aspen.kv.keyspace import Keyspace
    from aspen.kv.spec import CommandSpec

_ABSENT = object()
_OTHER_DB = frozenset({"move", "copy"})
"""Writes that may touch a key in another database: the whole keyspace is saved first."""


class UndoLog:
    def __init__(self, keyspace: Keyspace, now_ms: int) -> None:
        self.keyspace = keyspace
        self.now_ms = now_ms
        self.saved: dict[tuple[int, bytes], tuple[object, int | None]] = {}  # by (db, key)
        self.whole: bytes | None = None

    def before_write(self, argv: list[bytes], spec: CommandSpec | None = None) -> None:
        if self.whole is not None:
            return
        if spec is None:
            spec = cmdtable.lookup(argv[0])
        keys = spec.keys(argv) if spec is not None else []
        if not keys or (spec is not None and spec.name in _OTHER_DB):
            self.whole = self.keyspace.snapshot()
            return
        ks = self.keyspace
        db = ks.db
        for key in keys:
            if (db, key) in self.saved:
                continue
            value = ks.get_read(key, self.now_ms)
            if value is None:
                self.saved[db, key] = (_ABSENT, None)
            else:
                self.saved[db, key] = (ks.copy_value(value), ks.deadline(key))

    def rollback(self) -> None:
        ks = self.keyspace
        if self.whole is not None:
            ks.replace_with(type(ks).restore(self.whole))
        current = ks.db
        for (db, key), (value, deadline) in self.saved.items():
            ks.select(db)
            if value is _ABSENT:
                ks.delete(key, self.now_ms)
                continue
            ks.get_write(key, self.now_ms)  # drops it if it expired meanwhile
            ks.set_value(key, value)
            if deadline is not None:
                ks.set_deadline(key, deadline)
        ks.select(current)
