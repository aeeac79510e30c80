"""The replicated ACL op: `ASPEN.ACLOP SETUSER name rule...`, `DELUSER name...` and
`LOAD filename text` (ACL LOAD: the file's users replace all).

Sessions turn ACL SETUSER / DELUSER into this internal write; `Keyspace.execute` runs it on
every replica in log order, so a user made on one node can log in on all of them. It is
deterministic (no clock, no randomness). It must not import `aspen.kv` at run time: the
command table imports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from aspen.acl import aclfile
from aspen.resp.values import OK, Error

if TYPE_CHECKING:
    from aspen.kv.keyspace import Keyspace


def aclop(ks: Keyspace, argv: Sequence[bytes], now: int) -> object:
    what = argv[1].lower()
    if what == b"setuser" and len(argv) >= 3:
        return ks.acl.setuser(argv[2], list(argv[3:]))
    if what == b"deluser" and len(argv) >= 3:
        return ks.acl.deluser(list(argv[2:]))
    if what == b"load" and len(argv) == 4:  # LOAD filename text (checked by the proposer)
        users = aclfile.parse(argv[3], argv[2].decode("utf-8", "replace"))
        if isinstance(users, str):
            return Error(f"ERR {users}")
        ks.acl.replace(users)
        return OK
    return Error("ERR aspen.aclop: unknown ACL operation")
