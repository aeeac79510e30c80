"""The ACL command's subcommands, answered for a session (`Session.cmd_acl` calls `run`).

SETUSER and DELUSER become the replicated write `ASPEN.ACLOP` (a `WriteOp`): they change the
user table on every replica. The others read the local replica's table (or, for LOG, the
node's own log). GENPASS takes its randomness from the OS: it changes nothing replicated.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from aspen.acl import aclfile
from aspen.acl.catalog import CATEGORIES, COMMANDS
from aspen.acl.check import Denied, check, denied_text
from aspen.acl.rules import User
from aspen.kv.ops import WriteOp
from aspen.resp.values import OK, Double, Error, Map, Set, SimpleString

if TYPE_CHECKING:
    from aspen.acl.state import AclState
    from aspen.kv.commands import CommandSpec

_HELP = (
    "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
    "HELP",
    "    Prints this help.",
)
_NOT_INTEGER = Error("ERR value is not an integer or out of range")


def _int(raw: bytes) -> int | None:
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if str(value).encode() == raw and -(2**63) <= value < 2**63 else None


def getuser(user: User) -> Map:
    root = user.root
    fields: list[tuple[object, object]] = [
        (b"flags", Set([f.encode() for f in user.flag_list()])),
        (b"passwords", [p.encode() for p in user.passwords]),
        (b"commands", root.command_rules().encode()),
        (b"keys", root.keys_text().encode()),
        (b"channels", root.channels_text().encode()),
        (
            b"selectors",
            [
                Map(
                    [
                        (b"commands", s.command_rules().encode()),
                        (b"keys", s.keys_text().encode()),
                        (b"channels", s.channels_text().encode()),
                    ]
                )
                for s in user.selectors[1:]
            ],
        ),
    ]
    return Map(fields)


def _cat(argv: list[bytes]) -> object:
    if len(argv) == 2:
        return [c.encode() for c in CATEGORIES]
    if len(argv) > 3:
        return Error("ERR unknown subcommand or wrong number of arguments for 'cat'. Try ACL HELP.")
    cat = argv[2].decode("utf-8", "replace").lower()
    if cat not in CATEGORIES:
        return Error(f"ERR Unknown category '{argv[2].decode('utf-8', 'replace')}'")
    out: list[bytes] = []
    for name, (cats, _specs, subs, _na, _ar) in COMMANDS.items():
        if cat in cats:
            out.append(name.encode())
        out += [s.encode() for s, entry in subs if cat in entry[0]]
    return out


def _dryrun(acl: AclState, argv: list[bytes]) -> object:
    from aspen.kv import commands as cmdtable  # the table imports aspen.acl.replicated

    user = acl.users.get(argv[2])
    if user is None:
        return Error(f"ERR User '{argv[2].decode('utf-8', 'replace')}' not found")
    cmd_argv = argv[3:]
    spec: CommandSpec | None = cmdtable.lookup(cmd_argv[0])
    if spec is not None and spec.subcommands:
        sub = cmdtable.lookup_subcommand(spec, cmd_argv[1]) if len(cmd_argv) > 1 else None
        spec = sub
    if spec is None:
        return Error(f"ERR Command '{cmd_argv[0].decode('utf-8', 'replace')}' not found")
    if not spec.arity_ok(len(cmd_argv)):
        return Error(f"ERR wrong number of arguments for '{spec.name}' command")
    result, idx = check(user, spec.name, cmd_argv, list(spec.key_positions(len(cmd_argv))))
    if result is not Denied.OK:
        return denied_text(result, spec.name, cmd_argv, idx).encode()
    return OK


def _log(acl: AclState, argv: list[bytes], now_ms: int) -> object:
    count = 10
    if len(argv) == 3:
        if argv[2].lower() == b"reset":
            acl.log.clear()
            return OK
        parsed = _int(argv[2])
        if parsed is None:
            return _NOT_INTEGER
        count = max(parsed, 0)
    return [
        Map(
            [
                (b"count", e.count),
                (b"reason", e.reason.encode()),
                (b"context", e.context.encode()),
                (b"object", e.object.encode()),
                (b"username", e.username.encode()),
                (b"age-seconds", Double((now_ms - e.created_ms) / 1000)),
                (b"client-info", e.client_info.encode()),
            ]
        )
        for e in acl.log[:count]
    ]


def _file(acl: AclState, sub: bytes, path: str) -> object:
    if not path:
        return Error(f"ERR {aclfile.NO_FILE}")
    if sub == b"save":
        try:
            aclfile.save(Path(path), acl.users)
        except OSError:
            return Error(f"ERR {aclfile.SAVE_FAILED}")
        return OK
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        return Error(f"ERR Error loading ACLs, opening file '{path}': {exc.strerror}")
    checked = aclfile.parse(text, path)
    if isinstance(checked, str):
        return Error(f"ERR {checked}")
    return WriteOp([b"aspen.aclop", b"load", path.encode(), text])


def run(
    acl: AclState, username: bytes, argv: list[bytes], now_ms: int, aclfile_path: str = ""
) -> object:
    """ACL <sub> ... (the session checked the subcommand and its arity)."""
    sub = argv[1].lower()
    if sub in (b"setuser", b"deluser"):
        return WriteOp([b"aspen.aclop", *argv[1:]])
    if sub == b"getuser":
        user = acl.users.get(argv[2])
        return getuser(user) if user is not None else None
    if sub == b"list":
        return [
            f"user {n.decode('utf-8', 'replace')} {u.describe()}".encode()
            for n, u in sorted(acl.users.items())
        ]
    if sub == b"users":
        return sorted(acl.users)
    if sub == b"whoami":
        return username
    if sub == b"cat":
        return _cat(argv)
    if sub == b"genpass":
        bits = 256
        if len(argv) > 3:
            return Error(
                "ERR unknown subcommand or wrong number of arguments for 'genpass'. Try ACL HELP."
            )
        if len(argv) == 3:
            parsed = _int(argv[2])
            if parsed is None:
                return _NOT_INTEGER
            bits = parsed
        if bits <= 0 or bits > 4096:
            return Error(
                "ERR ACL GENPASS argument must be the number of bits for the output password, "
                "a positive number up to 4096"
            )
        return os.urandom((bits + 7) // 8 + 1).hex()[: (bits + 3) // 4].encode()
    if sub == b"log":
        if len(argv) > 3:
            return Error(
                "ERR unknown subcommand or wrong number of arguments for 'log'. Try ACL HELP."
            )
        return _log(acl, argv, now_ms)
    if sub == b"dryrun":
        return _dryrun(acl, argv)
    if sub in (b"save", b"load"):
        return _file(acl, sub, aclfile_path)
    return [SimpleString(line) for line in _HELP]
