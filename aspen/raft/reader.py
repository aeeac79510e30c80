"""What the core may read back from storage: entries it dropped from memory.

The core keeps only a bounded tail of its log in memory (RaftConfig.log_window_*); older
entries are applied and durable, so storage holds them. When a lagging follower needs them,
the core reads them back synchronously through this interface (like etcd raft's
Storage.Entries). Terms are never read back: the log keeps one (first index, term) pair per
term change in memory, which answers every term check without touching storage.
"""

from __future__ import annotations

from typing import Protocol

from aspen.raft.types import Entry


class LogReader(Protocol):
    def entries(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        """Entries with lo <= index < hi; with `max_bytes`, a prefix (at least one entry).

        The core only asks for entries it has seen become durable and applied and that are
        not inside its snapshot: the runtime's storage must still hold them (it compacts
        only behind a snapshot the core took or installed first).
        """
        ...
