"""ACL SAVE / ACL LOAD: the users as Redis's ACL file (`user <name> <rules>` lines).

LOAD is checked on the node that runs it (Redis's error texts, naming the file and line);
the file's text then travels through the log (`ASPEN.ACLOP LOAD`), and every replica replaces
its users with the same result. SAVE writes the local replica's users (temp file + rename).
"""

from __future__ import annotations

import os
from pathlib import Path

from aspen.acl.rules import AclError, User, merge_selector_args

NO_FILE = (
    "This Redis instance is not configured to use an ACL file. You may want to specify users "
    "via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis "
    "configuration file set) in order to store users in the Redis configuration."
)
SAVE_FAILED = (
    "There was an error trying to save the ACLs. Please check the server logs for more information"
)


def parse(text: bytes, filename: str) -> dict[bytes, User] | str:
    """The users of an ACL file, or Redis's error text (no user is changed then)."""
    users: dict[bytes, User] = {}
    errors = ""
    for number, raw in enumerate(text.split(b"\n"), start=1):
        line = raw.strip(b" \t\r\n")
        if not line:
            continue
        argv = [a for a in line.split(b" ") if a]
        if not argv:
            continue
        if argv[0] != b"user" or len(argv) < 2:
            errors += (
                f"{filename}:{number} should start with user keyword followed by the username. "
            )
            continue
        name = argv[1]
        if any(c in b" \t\n\v\f\r\x00" for c in name):
            errors += (
                f"'{filename}:{number}: username '{name.decode('utf-8', 'replace')}' contains "
                "invalid characters. "
            )
            continue
        if name in users:
            errors += (
                f"WARNING: Duplicate user '{name.decode('utf-8', 'replace')}' found on line "
                f"{number}. "
            )
            continue
        user = User(name)
        users[name] = user
        try:
            ops = merge_selector_args(argv[2:])
        except AclError:
            errors += f"{filename}:{number}: Unmatched parenthesis in selector definition."
            continue
        syntax_reported = False
        for op in ops:
            op = op.strip(b"\t\r\n")
            try:
                user.apply(op)
            except AclError as exc:
                if str(exc).startswith("Unknown command"):
                    errors += (
                        f"{filename}:{number}: Error in applying operation "
                        f"'{op.decode('utf-8', 'replace')}': {exc}. "
                    )
                elif not syntax_reported:
                    errors += f"{filename}:{number}: {exc}. "
                    syntax_reported = True
    if errors:
        return (
            errors + "WARNING: ACL errors detected, no change to the previously active ACL "
            "rules was performed"
        )
    if b"default" not in users:
        users[b"default"] = User.default()
    return users


def render(users: dict[bytes, User]) -> bytes:
    return b"".join(
        b"user " + name + b" " + u.describe().encode("utf-8", "surrogateescape") + b"\n"
        for name, u in sorted(users.items())
    )


def save(path: Path, users: dict[bytes, User]) -> None:
    """Write atomically: a temp file next to `path`, fsynced, then renamed over it."""
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(render(users))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
