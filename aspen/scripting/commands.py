"""EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT, FCALL, FCALL_RO and FUNCTION: the keyspace
functions the command table (aspen.scripting.specs) pairs with their specs.

EVAL, EVALSHA, FCALL, SCRIPT and FUNCTION are WRITE commands: they come through the Raft log,
so a script may write and what SCRIPT LOAD / FUNCTION LOAD change is replicated. The *_RO
forms are READs run on one node: they refuse writes, and a body they see first is remembered
by that node only.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import lupa

from aspen.kv.errors import SYNTAX, CommandError
from aspen.kv.numbers import parse_int
from aspen.resp.values import OK, Error, Map, Set, SimpleString
from aspen.scripting import dumpformat, shebang
from aspen.scripting.dispatch import CallContext
from aspen.scripting.engine import DEFAULT_BUDGET, UNBOUNDED, ScriptFailed, sha1hex
from aspen.scripting.state import FUNCTION_FLAGS, FunctionInfo, Library, ScriptState

NOSCRIPT = Error("NOSCRIPT No matching script. Please use EVAL.")
NOTBUSY = Error("NOTBUSY No scripts in execution right now.")
BUSY_EVAL = Error("BUSY Redis is busy running a script. You can only call SCRIPT KILL or "
                  "SHUTDOWN NOSAVE.")
BUSY_FUNCTION = Error("BUSY Redis is busy running a script. You can only call FUNCTION KILL "
                      "or SHUTDOWN NOSAVE.")
RO_WITH_WRITE_FLAG = "ERR Can not execute a script with write flag using *_ro command."
NOT_INTEGER = "ERR value is not an integer or out of range"
_NAME_RE = re.compile(rb"^[A-Za-z0-9_]+$")
_NAME_ERROR = ("names can only contain letters, numbers, or underscores(_) and must be at "
               "least one character long")
log = logging.getLogger("aspen.scripting")

if TYPE_CHECKING:
    from aspen.kv.keyspace import Keyspace

Argv = list[bytes] | tuple[bytes, ...]


def state_of(ks: Keyspace) -> ScriptState:
    state = ks.scripting
    if state is None:
        state = ks.scripting = ScriptState()
    state.budget = ks.script_budget or DEFAULT_BUDGET
    return state  # type: ignore[no-any-return]


def _numkeys(argv: Argv, at: int) -> int:
    n = parse_int(argv[at])
    if n is None:
        raise CommandError(NOT_INTEGER)
    if n > len(argv) - at - 1:
        raise CommandError("ERR Number of keys can't be greater than number of args")
    if n < 0:
        raise CommandError("ERR Number of keys can't be negative")
    return n


def _busy_elsewhere(state: ScriptState) -> Error | None:
    """A killable read-only run (aspen.scripting.local) uses this Lua state in another
    thread: a script reaching the keyspace another way meanwhile (the node's connections are
    gated, but not e.g. the HTTP /read endpoint) gets BUSY rather than waiting for it on the
    event loop."""
    holder = state.holder
    if holder is None or holder[0] == threading.get_ident():
        return None
    return BUSY_EVAL if holder[1] else BUSY_FUNCTION


def _run(state: ScriptState, ks: Keyspace, now_ms: int, read_only: bool,
         body: Callable[[int], object], funcname: str) -> object:
    """Run `body(budget)` with a fresh call context. A read-only script run by
    `aspen.scripting.local.execute_killable` (served by this node alone, outside the log) has
    no budget but can be killed; every other run has the deterministic budget."""
    engine = state.engine
    interrupted = state.interrupt if read_only else None
    budget = state.budget if interrupted is None else UNBOUNDED
    ctx = CallContext(ks, now_ms, read_only, budget, undoable=not read_only,
                      interrupted=interrupted)
    engine.context = ctx
    engine.seed(ks.seed)
    try:
        return body(budget)
    except ScriptFailed as failed:
        if failed.budget_exceeded and ctx.undo is not None:
            ctx.undo.rollback()
        return failed.reply
    except lupa.LuaError as exc:
        text = str(exc).replace("\r", " ").replace("\n", " ")[:100]
        return Error(f"ERR Error running script {funcname}, {text}")
    finally:
        engine.context = None


# ---------------------------------------------------------------------------------- EVAL


def _eval(ks: Keyspace, argv: Argv, now_ms: int, *, by_sha: bool,
          ro_command: bool, replicated: bool) -> object:
    state = state_of(ks)
    busy = _busy_elsewhere(state)
    if busy is not None:
        return busy
    n = _numkeys(argv, 2)
    if by_sha:
        sha = argv[1].lower()
        body = state.scripts.get(sha)
        if body is None and not replicated:
            body = state.local_scripts.get(sha)
        if body is None:
            return NOSCRIPT
    else:
        body = argv[1]
        sha = sha1hex(body)
    flags, code = shebang.parse(body)
    no_writes = flags is not None and "no-writes" in flags
    if ro_command and flags is not None and not no_writes:
        return Error(RO_WITH_WRITE_FLAG)
    engine = state.engine
    fn = engine.compiled.get(sha)
    if fn is None:
        try:
            fn = engine.compile(code, b"@user_script")
        except ScriptFailed as failed:
            return failed.reply
        engine.compiled[sha] = fn
    if not by_sha:
        if replicated:
            state.scripts[sha] = body
        elif sha not in state.scripts:
            state.local_scripts[sha] = body
    keys = list(argv[3:3 + n])
    args = list(argv[3 + n:])
    name = sha.decode()
    return _run(state, ks, now_ms, ro_command or no_writes or not replicated,
                lambda budget: engine.eval(fn, keys, args, budget, name), name)


def eval_(ks: Keyspace, argv: Argv, now_ms: int) -> object:
    """EVAL (through the log)."""
    return _eval(ks, argv, now_ms, by_sha=False, ro_command=False, replicated=True)


def evalsha(ks: Keyspace, argv: Argv, now_ms: int) -> object:
    """EVALSHA (through the log)."""
    return _eval(ks, argv, now_ms, by_sha=True, ro_command=False, replicated=True)


def eval_ro(ks: Keyspace, argv: Argv, now_ms: int) -> object:
    """EVAL_RO (a read on this node)."""
    return _eval(ks, argv, now_ms, by_sha=False, ro_command=True, replicated=False)


def evalsha_ro(ks: Keyspace, argv: Argv, now_ms: int) -> object:
    """EVALSHA_RO (a read on this node)."""
    return _eval(ks, argv, now_ms, by_sha=True, ro_command=True, replicated=False)


# ---------------------------------------------------------------------------------- SCRIPT

_SCRIPT_HELP = (
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Prints this help.",
)


def _flush_mode_ok(argv: Argv) -> bool:
    return len(argv) == 2 or (len(argv) == 3 and argv[2].lower() in (b"async", b"sync"))


def _script(ks: Keyspace, argv: Argv, now_ms: int,
            replicated: bool) -> object:
    sub = argv[1].lower()
    state = state_of(ks)
    if sub == b"load":
        body = argv[2]
        shebang.parse(body)
        sha = sha1hex(body)
        engine = state.engine
        if sha not in engine.compiled:
            try:
                engine.compiled[sha] = engine.compile(shebang.parse(body)[1], b"@user_script")
            except ScriptFailed as failed:
                return failed.reply
        if replicated:
            state.scripts[sha] = body
        else:
            state.local_scripts[sha] = body
        return sha
    if sub == b"exists":
        return [1 if (s.lower() in state.scripts or s.lower() in state.local_scripts) else 0
                for s in argv[2:]]
    if sub == b"flush":
        if not _flush_mode_ok(argv):
            return Error("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
        state.flush_scripts()
        state.reset_engine()
        return OK
    if sub == b"help":
        return [SimpleString(line) for line in _SCRIPT_HELP]
    return Error(f"ERR unknown subcommand '{argv[1].decode('utf-8', 'replace')}'. "
                 "Try SCRIPT HELP.")


def script(ks: Keyspace, argv: Argv, now_ms: int) -> object:
    """SCRIPT LOAD/EXISTS/FLUSH/HELP: through the log (the cache is replicated); SCRIPT KILL
    is answered by the connection (aspen.cluster.scriptrun)."""
    return _script(ks, argv, now_ms, True)


# ---------------------------------------------------------------------------------- FUNCTION


def _parse_library_meta(code: bytes) -> bytes:
    if not code.startswith(b"#!"):
        raise CommandError("ERR Missing library metadata")
    end = code.find(b"\n")
    line = code if end < 0 else code[:end]
    parts = line[2:].split(b" ")
    engine_name = parts[0]
    if engine_name.lower() != b"lua":
        raise CommandError(f"ERR Engine '{engine_name.decode('utf-8', 'replace')}' not found")
    name: bytes | None = None
    for part in parts[1:]:
        if not part:
            continue
        if part.startswith(b"name="):
            name = part[5:]
        else:
            raise CommandError(
                f"ERR Invalid metadata value given: {part.decode('utf-8', 'replace')}")
    if name is None:
        raise CommandError("ERR Library name was not given")
    if not _NAME_RE.match(name):
        raise CommandError("ERR Library " + _NAME_ERROR)
    return name


def _build_library(state: ScriptState, code: bytes) -> Library:
    """Compile `code` and run its registrations in the engine; CommandError on any failure."""
    name = _parse_library_meta(code)
    engine = state.engine
    end = code.find(b"\n")
    body = b"" if end < 0 else code[end:]
    try:
        fn = engine.compile(body, b"@user_function")
    except ScriptFailed as failed:
        text = failed.reply.message.removeprefix("ERR Error compiling script (new function): ")
        raise CommandError(f"ERR Error compiling function: {text}") from None
    lib = Library(name, code)

    def register(fname: bytes, flags: list[bytes], description: bytes | None) -> str | None:
        if not _NAME_RE.match(fname):
            return "ERR Library " + _NAME_ERROR  # sic: Redis 7.0 says "Library" here
        if fname in lib.functions:
            return "ERR Function already exists in the library"
        for f in flags:
            if f.decode("utf-8", "replace") not in FUNCTION_FLAGS:
                return "ERR unknown flag given"
        lib.functions[fname] = FunctionInfo(
            fname, tuple(f.decode() for f in flags), description)
        return None

    from aspen.kv.keyspace import Keyspace  # (the table imports this module: no cycle)

    handle = engine.table({})
    engine.registering = register
    ctx = CallContext(Keyspace(), 0, True, state.budget)
    engine.context = ctx
    try:
        engine.load_library(fn, handle, state.budget)
    except ScriptFailed as failed:
        raise CommandError(f"ERR Error registering functions: {failed.reply.message}") from None
    finally:
        engine.registering = None
        engine.context = None
    if not lib.functions:
        raise CommandError("ERR No functions registered")
    lib.handle = handle
    return lib


def _add_library(state: ScriptState, lib: Library, replace: bool) -> None:
    old = state.libraries.get(lib.name)
    if old is not None and not replace:
        raise CommandError(f"ERR Library '{lib.name.decode('utf-8', 'replace')}' already exists")
    for fname in lib.functions:
        owner = state.functions.get(fname)
        if owner is not None and owner != lib.name:
            raise CommandError(f"ERR Function {fname.decode('utf-8', 'replace')} already exists")
    if old is not None:
        for fname in old.functions:
            state.functions.pop(fname, None)
        del state.libraries[lib.name]
    state.libraries[lib.name] = lib
    for fname in lib.functions:
        state.functions[fname] = lib.name


def restore_scripting(obj: dict[str, Any]) -> ScriptState:
    """The scripting state from a snapshot: libraries are registered again (same code, same
    functions on every replica)."""

    def register(state: ScriptState, code: bytes) -> None:
        try:
            _add_library(state, _build_library(state, code), replace=True)
        except Exception:  # it loaded when it was replicated: same code, same outcome
            log.exception("function library from a snapshot did not load again")

    return ScriptState.load(obj, register)


def _handle(state: ScriptState, lib: Library) -> Any:
    if lib.handle is None or state.engine.compiled is None:
        lib.handle = _build_library(state, lib.code).handle
    return lib.handle


def _fcall(ks: Keyspace, argv: Argv, now_ms: int, *,
           ro_command: bool, replicated: bool) -> object:
    state = state_of(ks)
    busy = _busy_elsewhere(state)
    if busy is not None:
        return busy
    fname = argv[1]
    libname = state.functions.get(fname)
    if libname is None:
        return Error("ERR Function not found")
    n = _numkeys(argv, 2)
    lib = state.libraries[libname]
    info = lib.functions[fname]
    no_writes = "no-writes" in info.flags
    if ro_command and not no_writes:
        return Error(RO_WITH_WRITE_FLAG)
    engine = state.engine
    handle = _handle(state, lib)
    keys = list(argv[3:3 + n])
    args = list(argv[3 + n:])
    name = fname.decode("utf-8", "replace")
    return _run(state, ks, now_ms, ro_command or no_writes or not replicated,
                lambda budget: engine.fcall(handle, fname, keys, args, budget, name), name)


def fcall(ks: Keyspace, argv: Argv, now_ms: int) -> object:
    """FCALL (through the log)."""
    return _fcall(ks, argv, now_ms, ro_command=False, replicated=True)


def fcall_ro(ks: Keyspace, argv: Argv, now_ms: int) -> object:
    """FCALL_RO (a read on this node)."""
    return _fcall(ks, argv, now_ms, ro_command=True, replicated=False)


_FUNCTION_HELP = (
    "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using "
    "FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a "
    "restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, "
    "abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, "
    "replace the old",
    "      libraries with the new libraries (notice that even on this option there is a chance "
    "of failure",
    "      in case of functions name collision with another library).",
    "HELP",
    "    Prints this help.",
)


def _function_list(state: ScriptState, argv: Argv) -> object:
    from aspen.kv.glob import compile_glob

    with_code = False
    pattern: bytes | None = None
    i = 2
    while i < len(argv):
        opt = argv[i].lower()
        if opt == b"withcode" and not with_code:
            with_code = True
        elif opt == b"libraryname" and pattern is None:
            if i + 1 >= len(argv):
                return Error("ERR library name argument was not given")
            pattern = argv[i + 1]
            i += 1
        else:
            return Error(f"ERR Unknown argument {argv[i].decode('utf-8', 'replace')}")
        i += 1
    # Redis 7.0 matches library names without case (functions.c: stringmatchlen(..., 1))
    match = compile_glob(pattern, nocase=True) if pattern is not None else None
    out: list[object] = []
    for lib in state.libraries.values():
        if match is not None and not match(lib.name):
            continue
        functions = [
            Map([(b"name", f.name), (b"description", f.description),
                 (b"flags", Set([x.encode() for x in f.flags]))])
            for f in lib.functions.values()
        ]
        items: list[tuple[object, object]] = [
            (b"library_name", lib.name), (b"engine", b"LUA"), (b"functions", functions)]
        if with_code:
            items.append((b"library_code", lib.code))
        out.append(Map(items))
    return out


def _function(ks: Keyspace, argv: Argv, now_ms: int,
              replicated: bool) -> object:
    sub = argv[1].lower()
    state = state_of(ks)
    if sub in (b"load", b"delete", b"flush", b"restore") and not replicated:
        return Error("ERR FUNCTION " + sub.decode().upper() + " must go through the log")
    if sub == b"load":
        replace = False
        rest = list(argv[2:])
        while len(rest) > 1:
            opt = rest.pop(0)
            if opt.lower() == b"replace" and not replace:
                replace = True
            else:
                return Error(f"ERR Unknown option given: {opt.decode('utf-8', 'replace')}")
        if not rest:
            return Error("ERR Function code is missing")
        code = rest[0]
        name = _parse_library_meta(code)
        if name in state.libraries and not replace:
            return Error(f"ERR Library '{name.decode('utf-8', 'replace')}' already exists")
        lib = _build_library(state, code)
        _add_library(state, lib, replace)
        return lib.name
    if sub == b"delete":
        if len(argv) != 3:
            return Error("ERR wrong number of arguments for 'function|delete' command")
        gone = state.libraries.pop(argv[2], None)
        if gone is None:
            return Error("ERR Library not found")
        for fname in gone.functions:
            state.functions.pop(fname, None)
        return OK
    if sub == b"flush":
        if not _flush_mode_ok(argv):
            return Error("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
        state.libraries.clear()
        state.functions.clear()
        return OK
    if sub == b"list":
        return _function_list(state, argv)
    if sub == b"dump":
        return dumpformat.dump([lib.code for lib in state.libraries.values()])
    if sub == b"restore":
        return _function_restore(state, argv)
    if sub == b"help":
        return [SimpleString(line) for line in _FUNCTION_HELP]
    return Error(f"ERR unknown subcommand '{argv[1].decode('utf-8', 'replace')}'. "
                 "Try FUNCTION HELP.")


def function_stats(ks: Keyspace, running: Map | None) -> Map:
    """FUNCTION STATS's reply: `running` is the function this node runs now (name, command,
    duration_ms), if any; the engine counts are this node's libraries."""
    state = ks.scripting
    libraries = [] if state is None else list(state.libraries.values())
    funcs = sum(len(lib.functions) for lib in libraries)
    return Map([(b"running_script", running), (b"engines", Map([(b"LUA", Map([
        (b"libraries_count", len(libraries)), (b"functions_count", funcs)]))]))])


def _function_restore(state: ScriptState, argv: Argv) -> object:
    policy = b"append"
    if len(argv) == 4:
        policy = argv[3].lower()
        if policy not in (b"append", b"replace", b"flush"):
            return Error("ERR Wrong restore policy given, value should be either FLUSH, "
                         "APPEND or REPLACE.")
    elif len(argv) > 4:
        return Error(SYNTAX)
    try:
        codes = dumpformat.load(argv[2])
    except dumpformat.PayloadError as exc:
        if str(exc) == "given type is not a function":
            return Error("ERR given type is not a function")
        return Error("ERR DUMP payload version or checksum are wrong")
    # build into a scratch state first: nothing changes unless every library loads
    scratch = ScriptState()
    scratch.budget = state.budget
    if policy != b"flush":
        for lib in state.libraries.values():
            scratch.libraries[lib.name] = lib
            for fname in lib.functions:
                scratch.functions[fname] = lib.name
    for code in codes:
        lib = _build_library(state, code)
        if lib.name in scratch.libraries and policy == b"append":
            return Error(f"ERR Library {lib.name.decode('utf-8', 'replace')} already exists")
        _add_library(scratch, lib, replace=True)
    state.libraries = scratch.libraries
    state.functions = scratch.functions
    return OK


def function(ks: Keyspace, argv: Argv, now_ms: int) -> object:
    """FUNCTION LOAD/DELETE/FLUSH/LIST/DUMP/RESTORE/HELP: through the log (STATS and KILL
    are about what this node runs now: the connection answers them)."""
    return _function(ks, argv, now_ms, True)
