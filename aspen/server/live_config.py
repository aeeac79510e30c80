"""One node's run-time parameters: the state behind CONFIG GET / SET / RESETSTAT / REWRITE.

CONFIG SET is per node, as in Redis (per server): it is not replicated, and each node of a
cluster keeps its own values (a client that wants a setting everywhere sets it on every
node, as with Redis replicas). Every Redis 7.0.15 parameter exists (aspen.server.params):

- *honoured* ones (`NodeHooks.honoured`) take effect on this node through the node's hook,
  which may refuse a value it cannot apply (the whole SET then fails, nothing changes);
- *fixed* ones (`NodeHooks.fixed`) are facts of Aspen (appendonly is always yes: every write
  is in the fsynced Raft log); setting them to another value fails with the reason;
- the rest (encoding and tuning knobs, replication and cluster-bus settings of Redis) are
  accepted, validated as Redis does and remembered: CONFIG GET shows them, REWRITE saves them.

Errors are Redis 7.0's texts; a SET of several pairs is all or nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import attrs

from aspen.kv.glob import glob_match
from aspen.resp.values import OK, Error
from aspen.server import params
from aspen.server.params import Flag, Invalid, Param

__all__ = ["NodeHooks", "ServerConfig"]


@attrs.frozen
class NodeHooks:
    """What the node does about its parameters (all optional: a bare session has none)."""

    # name -> apply(value): makes a new value take effect; raises Invalid to refuse it
    honoured: Mapping[str, Callable[[str], None]] = attrs.Factory(dict)
    # name -> (value, why it cannot change)
    fixed: Mapping[str, tuple[str, str]] = attrs.Factory(dict)
    # REWRITE: values that differ from Redis's defaults -> written to the node's file
    rewrite: Callable[[dict[str, str]], None] | None = None
    resetstat: Callable[[], None] | None = None


class ServerConfig:
    """The current value of every parameter on this node, by its canonical name."""

    def __init__(self, initial: Mapping[str, str] | None = None,
                 hooks: NodeHooks | None = None, facts: Mapping[str, str] | None = None) -> None:
        """`facts`: values the node's own settings give (its [node] keys: what REWRITE
        compares with); `initial`: the [redis] table's."""
        self.hooks = hooks or NodeHooks()
        self.fixed = dict(self.hooks.fixed)
        self.values: dict[str, str] = {p.name: p.default for p in params.PARAMS}
        for name, (value, _why) in self.fixed.items():
            self.values[name] = value
        self._load(facts or {})
        self.baseline = dict(self.values)
        self._load(initial or {})

    def _load(self, values: Mapping[str, str]) -> None:
        for name, value in values.items():
            param = params.lookup(name)
            if param is None:
                raise ValueError(f"unknown Redis parameter {name!r}")
            self.values[param.name] = param.parse(value, self.values[param.name])

    def __getitem__(self, name: str) -> str:
        return self.values[name]

    def fix(self, name: str, value: str) -> None:
        """A fixed parameter's value became known (the port bound when it was 0)."""
        self.values[name] = value
        if name in self.fixed:
            self.fixed[name] = (value, self.fixed[name][1])

    # -- CONFIG GET ------------------------------------------------------------------------

    def get(self, patterns: Iterable[bytes]) -> list[tuple[bytes, bytes]]:
        """Redis's rules: a name without glob characters is looked up exactly (shown as
        typed, hidden parameters included); a pattern matches every name and alias, any
        case, except hidden ones; a name already shown (in any case) is not shown again."""
        out: dict[bytes, tuple[bytes, bytes]] = {}  # lower-case name -> (as shown, value)
        for pattern in patterns:
            if not any(c in pattern for c in b"[*?"):
                if pattern.lower() in out:
                    continue
                param = params.lookup(pattern.decode("utf-8", "surrogateescape"))
                if param is not None:
                    out[pattern.lower()] = (pattern, self._show(param))
                continue
            for name, param in params.names():
                key = name.encode()
                if param.flags & Flag.HIDDEN or key in out:
                    continue
                if glob_match(pattern, key, nocase=True):
                    out[key] = (key, self._show(param))
        return list(out.values())

    def _show(self, param: Param) -> bytes:
        value = self.values[param.name]
        if param.name == "notify-keyspace-events":
            value = params.notify_text(params.notify_flags(value))
        return value.encode("utf-8", "surrogateescape")

    # -- CONFIG SET ------------------------------------------------------------------------

    def set(self, args: list[bytes]) -> object:
        """CONFIG SET name value [name value ...]: OK, or Redis's error and no change."""
        if len(args) % 2:
            return Error("ERR syntax error")
        chosen: list[tuple[str, Param, str]] = []
        for i in range(0, len(args), 2):
            shown = args[i].decode("utf-8", "surrogateescape")
            found = params.entry(shown)
            if found is None:
                return Error(f"ERR Unknown option or number of arguments for CONFIG SET - "
                             f"'{_c(shown)}'")
            entry, param = found
            if param.flags & Flag.IMMUTABLE:
                return _failed(shown, "can't set immutable config")
            if param.flags & Flag.PROTECTED:
                return _failed(shown, "can't set protected config")
            # (Redis's alias entries are distinct: a name and its alias are no duplicate)
            if any(e == entry for e, _, _ in chosen):
                return _failed(shown, "duplicate parameter")
            chosen.append((entry, param, args[i + 1].decode("utf-8", "surrogateescape")))
        new = dict(self.values)
        changed: list[str] = []
        for entry, param, text in chosen:
            # Redis names the parameter as the table entry it found (an alias as the alias)
            try:
                value = param.parse(text, new[param.name])
            except Invalid as exc:
                return _failed(entry, str(exc))
            fixed = self.fixed.get(param.name)
            if fixed is not None and value != fixed[0]:
                return _failed(entry, fixed[1])
            if value != new[param.name]:
                changed.append(param.name)
            new[param.name] = value
        old = self.values
        self.values = new
        applied: list[str] = []
        for name in changed:
            apply = self.hooks.honoured.get(name)
            if apply is None:
                continue
            try:
                apply(new[name])
                applied.append(name)
            except Invalid as exc:
                self.values = old  # undo what took effect, then report
                for done in applied:
                    self.hooks.honoured[done](old[done])
                return _failed(name, str(exc))
        return OK

    # -- CONFIG RESETSTAT / REWRITE ----------------------------------------------------------

    def resetstat(self) -> object:
        if self.hooks.resetstat is not None:
            self.hooks.resetstat()
        return OK

    def changed_from_default(self) -> dict[str, str]:
        """What differs from Redis's defaults and the node's own settings (for REWRITE)."""
        return {p.name: self.values[p.name] for p in params.PARAMS
                if self.values[p.name] != self.baseline[p.name] and p.name not in self.fixed}

    def rewrite(self) -> object:
        if self.hooks.rewrite is None:
            return Error("ERR The server is running without a config file")
        try:
            self.hooks.rewrite(self.changed_from_default())
        except (OSError, ValueError) as exc:
            return Error(f"ERR Rewriting config file: {exc}")
        return OK


def _c(text: str) -> str:
    """What C's %s prints: up to the first NUL."""
    return text.split("\x00", 1)[0]


def _failed(name: str, why: str) -> Error:
    return Error(f"ERR CONFIG SET failed (possibly related to argument '{_c(name)}') - {why}")
