"""The replicated ACL op: `ASPEN.ACLOP SETUSER name rule...` / `ASPEN.ACLOP DELUSER name...`.

Sessions turn ACL SETUSER / DELUSER into this internal write; `Keyspace.execute` runs it on
every replica in log order, so a user made on one node can log in on all of them. It is
deterministic (no clock, no randomness). It must not import `aspen.kv` at run time: the
command table imports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from aspen.resp.values import Error

if TYPE_CHECKING:
    from aspen.kv.keyspace import Keyspace


def aclop(ks: Keyspace, argv: Sequence[bytes], now: int) -> object:
    what = argv[1].lower()
    if what == b"setuser" and len(argv) >= 3:
        return ks.acl.setuser(argv[2], list(argv[3:]))
    if what == b"deluser" and len(argv) >= 3:
        return ks.acl.deluser(list(argv[2:]))
    return Error("ERR aspen.aclop: unknown ACL operation")
