"""Which EVALs a node may serve as reads (kept apart from the engine: the session imports it)."""

from __future__ import annotations

from aspen.kv.keyspace import CommandError
from aspen.scripting import shebang


def eval_is_read_only(argv: list[bytes]) -> bool:
    """Does this EVAL's script declare `no-writes` (then it runs as a read, like EVAL_RO)?"""
    if len(argv) < 2 or not argv[1].startswith(b"#!"):
        return False
    try:
        flags, _ = shebang.parse(argv[1])
    except CommandError:
        return False
    return flags is not None and "no-writes" in flags
