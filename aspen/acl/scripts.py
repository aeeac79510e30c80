"""A restricted user's scripts: every redis.call is checked against that user's rules.

The session wraps the script command of a user who may not do everything as
`ASPEN.SCRIPTAS user EVAL ...` (`ASPEN.SCRIPTAS_RO` for read-only scripts), so the user travels
in the log entry; the ACL users are replicated state, so every replica makes the same decision
at the same point of the log. Scripts of unrestricted users run unwrapped and unchecked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from aspen.acl.check import Denied, check
from aspen.kv.errors import CommandError

if TYPE_CHECKING:
    from aspen.kv.keyspace import Keyspace
    from aspen.kv.spec import CommandSpec

SCRIPT_AS = b"aspen.scriptas"
SCRIPT_AS_READ = b"aspen.scriptas_ro"

_WHY = {
    Denied.CMD: "can't run this command or subcommand",
    Denied.KEY: "can't access at least one of the keys mentioned in the command arguments",
    Denied.CHANNEL: "can't publish to the channel mentioned in the command",
}
_REASON = {Denied.CMD: "command", Denied.KEY: "key", Denied.CHANNEL: "channel"}


def script_as(ks: Keyspace, argv: Sequence[bytes], now: int) -> object:
    """ASPEN.SCRIPTAS / _RO user <script command...>: run it with `user` set for redis.call."""
    from aspen.kv.commands import READ_HANDLERS, WRITE_HANDLERS, lookup
    from aspen.kv.spec import Route

    inner = list(argv[2:])
    spec = lookup(inner[0])
    if spec is None or spec.group != "scripting":
        raise CommandError("ERR aspen.scriptas: not a script command")
    table = WRITE_HANDLERS if spec.route is Route.WRITE else READ_HANDLERS
    before, ks.script_user = ks.script_user, bytes(argv[1])
    try:
        return table[spec.name.encode()](ks, inner, now)
    finally:
        ks.script_user = before


def script_refusal(
    ks: Keyspace, username: bytes, spec: CommandSpec, argv: list[bytes], now_ms: int
) -> str | None:
    """Redis's error for a redis.call the script's user may not make (logged in ACL LOG with
    context "lua"), or None if allowed."""
    user = ks.acl.users.get(username)
    if user is None:  # deleted while its script waited in the log
        result, idx = Denied.CMD, 0
    else:
        result, idx = check(user, spec.name, argv, list(spec.key_positions(len(argv))))
    if result is Denied.OK:
        return None
    obj = spec.name if result is Denied.CMD else argv[idx].decode("utf-8", "replace")
    ks.acl.add_log(_REASON[result], "lua", obj, username.decode("utf-8", "replace"), now_ms, "")
    return f"ERR The user executing the script {_WHY[result]}"
