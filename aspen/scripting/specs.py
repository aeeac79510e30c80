"""Command specs for scripting and functions (appended to the command table).

Names, arities, flags, ACL categories, key specs, summaries and versions are Redis 7.0.15's
(COMMAND INFO / COMMAND DOCS). Routes are Aspen's: EVAL, EVALSHA, FCALL, SCRIPT and FUNCTION
(every subcommand but three: a keyspace command has one handler) are WRITEs though Redis does
not flag them "write" (`replicated`): they go through the Raft log, so every replica runs the
script and has the script cache and the libraries; the *_RO forms are READs (and so is an
EVAL/EVALSHA/FCALL of a `no-writes` script: the connection turns it into its *_RO form,
aspen.scripting.local). SCRIPT KILL, FUNCTION KILL and FUNCTION STATS are about the script this
node runs now: CONNECTION commands (aspen.cluster.scriptrun).
"""

from __future__ import annotations

from aspen.kv.spec import CommandSpec, Handler, KeySpec, Route
from aspen.scripting import commands as run

_R, _W, _C = Route.READ, Route.WRITE, Route.CONNECTION
_NOTES = "We cannot tell how the keys will be used so we assume the worst, "
_RW_KEYS = (KeySpec(("RW", "access", "update"), 2, "keynum",
                    notes=_NOTES + "RW and UPDATE"),)
_RW_KEYS_SHA = (KeySpec(("RW", "access", "update"), 2, "keynum"),)
_RO_KEYS = (KeySpec(("RO", "access"), 2, "keynum", notes=_NOTES + "RO and ACCESS"),)
_RO_KEYS_SHA = (KeySpec(("RO", "access"), 2, "keynum"),)
_SCRIPT_FLAGS = "noscript stale skip_monitor no_mandatory_keys movablekeys"


def _s(name: str, arity: int, flags: str, route: Route, acl: str, summary: str, since: str,
       handler: Handler | str, key_specs: tuple[KeySpec, ...] = (),
       subcommands: tuple[CommandSpec, ...] = ()) -> CommandSpec:
    return CommandSpec(name, arity, frozenset(flags.split()), 0, 0, 0, route, "scripting",
                       summary, since, tuple(acl.split()), subcommands, key_specs,
                       handler=handler, replicated=route is Route.WRITE)


_SCRIPT_SUBS = (
    _s("script|flush", -2, "noscript", _W, "@slow @scripting",
       "Remove all the scripts from the script cache.", "2.6.0", run.script),
    _s("script|help", 2, "loading stale", _W, "@slow @scripting",
       "Show helpful text about the different subcommands", "5.0.0", run.script),
    _s("script|kill", 2, "noscript allow_busy", _C, "@slow @scripting",
       "Kill the script currently in execution.", "2.6.0", "cmd_script_kill"),
    _s("script|load", 3, "noscript stale", _W, "@slow @scripting",
       "Load the specified Lua script into the script cache.", "2.6.0", run.script),
    _s("script|exists", -3, "noscript", _W, "@slow @scripting",
       "Check existence of scripts in the script cache.", "2.6.0", run.script),
)

_FUNCTION_SUBS = (
    _s("function|delete", 3, "write noscript", _W, "@write @slow @scripting",
       "Delete a function by name", "7.0.0", run.function),
    _s("function|help", 2, "loading stale", _W, "@slow @scripting",
       "Show helpful text about the different subcommands", "7.0.0", run.function),
    _s("function|list", -2, "noscript", _W, "@slow @scripting",
       "List information about all the functions", "7.0.0", run.function),
    _s("function|flush", -2, "write noscript", _W, "@write @slow @scripting",
       "Deleting all functions", "7.0.0", run.function),
    _s("function|kill", 2, "noscript allow_busy", _C, "@slow @scripting",
       "Kill the function currently in execution.", "7.0.0", "cmd_function_kill"),
    _s("function|dump", 2, "noscript", _W, "@slow @scripting",
       "Dump all functions into a serialized binary payload", "7.0.0", run.function),
    _s("function|stats", 2, "noscript allow_busy", _C, "@slow @scripting",
       "Return information about the function currently running (name, description, "
       "duration)", "7.0.0", "cmd_function_stats"),
    _s("function|load", -3, "write denyoom noscript", _W, "@write @slow @scripting",
       "Create a function with the given arguments (name, code, description)", "7.0.0",
       run.function),
    _s("function|restore", -3, "write denyoom noscript", _W, "@write @slow @scripting",
       "Restore all the functions on the given payload", "7.0.0", run.function),
)

SCRIPTING_SPECS: tuple[CommandSpec, ...] = (
    _s("eval", -3, _SCRIPT_FLAGS, _W, "@slow @scripting", "Execute a Lua script server side",
       "2.6.0", run.eval_, _RW_KEYS),
    _s("evalsha", -3, _SCRIPT_FLAGS, _W, "@slow @scripting",
       "Execute a Lua script server side", "2.6.0", run.evalsha, _RW_KEYS_SHA),
    _s("eval_ro", -3, "readonly " + _SCRIPT_FLAGS, _R, "@slow @scripting",
       "Execute a read-only Lua script server side", "7.0.0", run.eval_ro, _RO_KEYS),
    _s("evalsha_ro", -3, "readonly " + _SCRIPT_FLAGS, _R, "@slow @scripting",
       "Execute a read-only Lua script server side", "7.0.0", run.evalsha_ro,
       _RO_KEYS_SHA),
    _s("fcall", -3, _SCRIPT_FLAGS, _W, "@slow @scripting", "Invoke a function", "7.0.0",
       run.fcall, _RW_KEYS),
    _s("fcall_ro", -3, "readonly " + _SCRIPT_FLAGS, _R, "@slow @scripting",
       "Invoke a read-only function", "7.0.0", run.fcall_ro, _RO_KEYS),
    _s("script", -2, "", _W, "@slow", "A container for Lua scripts management commands",
       "2.6.0", run.script, subcommands=_SCRIPT_SUBS),
    _s("function", -2, "", _W, "@slow", "A container for function commands", "7.0.0",
       run.function, subcommands=_FUNCTION_SUBS),
)
