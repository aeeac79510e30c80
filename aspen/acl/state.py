"""The replicated user table and the node-local ACL LOG.

Users live in the keyspace (`Keyspace.acl`) so that ACL SETUSER / DELUSER, replicated as the
internal write `ASPEN.ACLOP`, reach every replica in log order and travel in snapshots. The
log of refusals is the node's own (as in Redis: each server logs what it refused).

`EPOCH` counts changes to any user table on this process: a session compares it with the
value it last saw, so the permission fast path is one integer comparison per command.
"""

from __future__ import annotations

import attrs

from aspen.acl.rules import AclError, User, merge_selector_args
from aspen.resp.values import OK, Error


class _Epoch:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


EPOCH = _Epoch()


@attrs.define
class LogEntry:
    count: int
    reason: str
    context: str
    object: str
    username: str
    created_ms: int
    updated_ms: int
    client_info: str
    entry_id: int


class AclState:
    """ACL users (replicated) and the ACL LOG (local)."""

    def __init__(self) -> None:
        self.users: dict[bytes, User] = {b"default": User.default()}
        self.touched = False  # a replicated op changed the table (snapshots carry it)
        self.default_touched = False  # "default" was set by ACL: requirepass no longer rules
        self.log: list[LogEntry] = []
        self.log_max = 128
        self._next_log_id = 0
        EPOCH.value += 1

    # -- replicated changes (run by Keyspace.execute on every replica)

    def setuser(self, name: bytes, rules: list[bytes]) -> object:
        if any(c in b" \t\n\v\f\r\x00" for c in name):
            return Error("ERR Usernames can't contain spaces or null characters")
        try:
            merged = merge_selector_args(rules)
        except AclError as exc:
            return Error(f"ERR {exc}")
        current = self.users.get(name)
        user = current.copy() if current is not None else User(name)
        for op in merged:
            try:
                user.apply(op)
            except AclError as exc:
                return Error(
                    f"ERR Error in ACL SETUSER modifier '{op.decode('utf-8', 'replace')}': {exc}"
                )
        self.users[name] = user
        self.touched = True
        self.default_touched |= name == b"default"
        EPOCH.value += 1
        return OK

    def deluser(self, names: list[bytes]) -> object:
        if b"default" in names:
            return Error("ERR The 'default' user cannot be removed")
        removed = 0
        for name in names:
            if self.users.pop(name, None) is not None:
                removed += 1
        self.touched = True
        EPOCH.value += 1
        return removed

    def replace(self, users: dict[bytes, User]) -> None:
        """ACL LOAD: the file's users replace all others."""
        self.users = users
        self.touched = True
        self.default_touched = True
        EPOCH.value += 1

    # -- snapshots

    def dump(self) -> list[object]:
        """The users as ACL rules (what ACL LIST prints, rebuilt by `load`), and whether
        "default" was set by ACL."""
        return [self.default_touched, [[name, u.describe()] for name, u in self.users.items()]]

    def load(self, dumped: list[object]) -> None:
        default_touched, listed = dumped
        assert isinstance(default_touched, bool) and isinstance(listed, list)
        users: dict[bytes, User] = {}
        for name, rules in listed:
            assert isinstance(name, bytes) and isinstance(rules, str)
            user = User(name)
            for op in merge_selector_args([r.encode() for r in rules.split(" ")]):
                user.apply(op)
            users[name] = user
        self.users = users
        self.touched = True
        self.default_touched = default_touched
        EPOCH.value += 1

    # -- the log

    def add_log(
        self, reason: str, context: str, obj: str, username: str, now_ms: int, client: str
    ) -> None:
        for i, e in enumerate(self.log[:10]):
            if (e.reason, e.context, e.object, e.username) == (reason, context, obj, username):
                e.count += 1
                e.updated_ms = now_ms
                e.client_info = client
                self.log.insert(0, self.log.pop(i))
                return
        self.log.insert(
            0,
            LogEntry(1, reason, context, obj, username, now_ms, now_ms, client, self._next_log_id),
        )
        self._next_log_id += 1
        del self.log[self.log_max :]
