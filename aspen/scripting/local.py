"""Read-only scripts served by one node, outside the Raft log.

EVAL_RO, EVALSHA_RO, FCALL_RO, and EVAL / EVALSHA / FCALL of a script or function declared
`no-writes`, cannot change the keyspace, so a node serves them at the connection's read
consistency like a GET (no log entry). Such a run has no instruction budget (nothing has to
stop at the same instruction on every replica): like Redis, it runs until it ends or SCRIPT
KILL / FUNCTION KILL stops it. The node runs it in a worker thread (aspen.cluster.scriptrun).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import attrs

from aspen.acl.scripts import SCRIPT_AS, SCRIPT_AS_READ
from aspen.kv.errors import CommandError
from aspen.kv.numbers import parse_int
from aspen.kv.ops import ReadOp
from aspen.scripting import shebang
from aspen.scripting.commands import state_of

if TYPE_CHECKING:
    from aspen.kv.keyspace import Keyspace

_READ_FORM = {b"eval": b"eval_ro", b"evalsha": b"evalsha_ro", b"fcall": b"fcall_ro"}
_EVALS = frozenset({b"eval", b"evalsha", b"eval_ro", b"evalsha_ro"})
_FUNCTIONS = frozenset({b"fcall", b"fcall_ro"})


@attrs.frozen
class ScriptCall:
    """What a script command runs, as SCRIPT KILL / FUNCTION KILL / FUNCTION STATS see it."""

    is_eval: bool
    name: bytes
    """The function's name (FCALL), the script's body or SHA (EVAL)."""
    command: tuple[bytes, ...]
    """The command as the client sent it (FUNCTION STATS shows it)."""


def script_call(argv: Sequence[bytes]) -> ScriptCall | None:
    """The script command in `argv` (a restricted user's comes wrapped in ASPEN.SCRIPTAS*),
    or None if `argv` does not run a script."""
    inner = argv
    if argv and argv[0].lower() in (SCRIPT_AS, SCRIPT_AS_READ):
        inner = argv[2:]
    if len(inner) < 2:
        return None
    name = inner[0].lower()
    if name in _EVALS:
        return ScriptCall(True, inner[1], tuple(inner))
    if name in _FUNCTIONS:
        return ScriptCall(False, inner[1], tuple(inner))
    return None


def _declares_no_writes(ks: Keyspace, name: bytes, arg: bytes) -> bool:
    state = ks.scripting
    if name == b"eval":
        body: bytes | None = arg
    elif state is None:
        return False
    elif name == b"evalsha":
        sha = arg.lower()
        body = state.scripts.get(sha) or state.local_scripts.get(sha)
    else:  # fcall
        libname = state.functions.get(arg)
        lib = state.libraries.get(libname) if libname is not None else None
        info = lib.functions.get(arg) if lib is not None else None
        return info is not None and "no-writes" in info.flags
    if body is None:
        return False
    try:
        flags, _ = shebang.parse(body)
    except CommandError:
        return False  # the log path answers the shebang's error
    return flags is not None and "no-writes" in flags


def read_form(ks: Keyspace, argv: Sequence[bytes]) -> ReadOp | None:
    """EVAL / EVALSHA / FCALL of a script this node knows as `no-writes`, as the ReadOp of its
    *_RO form (same replies, same refusal of writes: Redis runs both read-only); None for
    anything else, which goes through the log as before.

    Decided on this node's copy of the script cache and libraries: a node that has not yet
    applied a SCRIPT LOAD / FUNCTION LOAD sends the command through the log, which is
    correct, only slower."""
    prefix: list[bytes] = []
    inner = list(argv)
    if inner and inner[0].lower() == SCRIPT_AS:
        prefix, inner = [SCRIPT_AS_READ, inner[1]], inner[2:]
    if len(inner) < 3:
        return None
    name = inner[0].lower()
    ro = _READ_FORM.get(name)
    if ro is None:
        return None
    n = parse_int(inner[2])
    if n is None or n < 0 or n > len(inner) - 3:
        return None  # the log path answers the error
    if not _declares_no_writes(ks, name, inner[1]):
        return None
    return ReadOp([*prefix, ro, *inner[1:]])


def execute_killable(ks: Keyspace, op: ReadOp, now_ms: int, seed: int,
                     interrupted: Callable[[], bool]) -> object:
    """Run a read-only script op on `ks` with no budget; `interrupted()` turning true stops
    it with Redis's `ERR Script killed by user with SCRIPT KILL...`. Runs in a worker
    thread while the node holds the keyspace (nothing is applied to it meanwhile)."""
    state = state_of(ks)
    call = script_call(op.argv)
    state.interrupt = interrupted
    state.holder = (threading.get_ident(), call is None or call.is_eval)
    try:
        return ks.execute(op, now_ms, seed)
    finally:
        state.interrupt = None
        state.holder = None
