"""ACL users as Redis 7.0.15 models them: rules (ACL SETUSER), rendering (ACL LIST, GETUSER).

A user has flags (on/off, nopass, sanitize-payload), SHA-256 password hashes and selectors;
the first selector is the root one (its rules are the plain ones), the others are `(...)`.
A selector holds key patterns (each with read/write permission), channel patterns and the
set of allowed commands as a bitmap over Redis's whole command catalogue (aspen.acl.catalog):
category rules and their rendering count every command of a category, Aspen's or not, so
the printed rules are the ones Redis prints for the same history.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import attrs

from aspen.acl.catalog import CATEGORIES, COMMANDS

READ = 1
WRITE = 2
ALL_PERMS = READ | WRITE


class AclError(Exception):
    """A rule Redis refuses; the message is Redis's ACLSetUserStringError text."""


_ENOENT = "Unknown command or category name in ACL"
_EINVAL = "Syntax error"
_EEXIST = (
    "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not "
    "have any effect. Try 'resetkeys' to start with an empty list of patterns"
)
_EISDIR = (
    "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not "
    "have any effect. Try 'resetchannels' to start with an empty list of channels"
)
_ENODEV = "The password you are trying to remove from the user does not exist"
_EBADMSG = (
    "The password hash must be exactly 64 characters and contain only lowercase hexadecimal "
    "characters"
)
_ECHILD = "Allowing first-arg of a subcommand is not supported"


# ------------------------------------------------------------------ the command catalogue


class _Catalogue:
    """Every Redis command and subcommand as a bit; masks per category.

    `ids` follows the catalogue's (sorted) order, a container right before its subcommands:
    the order ACL LIST's single-command rules come in (Redis walks a hash table there, so
    its order is arbitrary; the set of rules is the same)."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.subs: dict[str, tuple[str, ...]] = {}
        self.cats: dict[str, tuple[str, ...]] = {}
        self.no_auth: set[str] = set()
        order: list[str] = []
        for name, (cats, _specs, subs, no_auth, _arity) in COMMANDS.items():
            order.append(name)
            self.cats[name] = tuple(cats)
            if no_auth:
                self.no_auth.add(name)
            self.subs[name] = tuple(s for s, _ in subs)
            for sub, (scats, _s, _ss, sno_auth, _a) in subs:
                order.append(sub)
                self.cats[sub] = tuple(scats)
                self.subs[sub] = ()
                if sno_auth:
                    self.no_auth.add(sub)
        for i, name in enumerate(order):
            self.ids[name] = i
        self.order = tuple(order)
        self.all_mask = (1 << len(order)) - 1
        # What "+cmd" changes: the command and all its subcommands.
        self.perm_mask = {
            n: (1 << self.ids[n]) | sum(1 << self.ids[s] for s in self.subs[n]) for n in order
        }
        self.set_mask: dict[str, int] = {}  # what +@cat changes
        self.count_mask: dict[str, int] = {}  # the commands counted as in the category
        self.containers: dict[str, tuple[str, ...]] = {}  # top-level commands with the category
        for cat in CATEGORIES:
            sm = cm = 0
            tops = []
            for n in order:
                if cat in self.cats[n]:
                    sm |= self.perm_mask[n]
                    cm |= 1 << self.ids[n]
                    if "|" not in n:
                        tops.append(n)
            self.set_mask[cat], self.count_mask[cat] = sm, cm
            self.containers[cat] = tuple(tops)

    def lookup(self, name: str) -> str | None:
        """Redis's ACLLookupCommand: "cmd" or "cmd|sub" (a container's subcommand)."""
        parts = name.lower().split("|")
        if len(parts) == 1:
            return parts[0] if parts[0] in self.ids and "|" not in parts[0] else None
        if len(parts) != 2 or parts[0] not in self.subs or not self.subs[parts[0]]:
            return None
        full = parts[0] + "|" + parts[1]
        return full if full in self.subs[parts[0]] else None


CATALOGUE = _Catalogue()


def hash_password(password: bytes) -> str:
    return hashlib.sha256(password).hexdigest()


def _valid_hash(text: bytes) -> bool:
    return len(text) == 64 and all(c in b"0123456789abcdef" for c in text)


def _has_spaces(text: bytes) -> bool:
    return any(c in b" \t\n\v\f\r\x00" for c in text)


# ------------------------------------------------------------------ selectors


_EXCLUSIVE_FLAGS = {
    b"on": ("on", "off"),
    b"off": ("off", "on"),
    b"sanitize-payload": ("sanitize-payload", "skip-sanitize-payload"),
    b"skip-sanitize-payload": ("skip-sanitize-payload", "sanitize-payload"),
}
"""SETUSER words that set one flag and clear its opposite."""


@attrs.define
class Selector:
    """Keys, channels and commands one selector allows (Redis's aclSelector)."""

    root: bool = False
    allkeys: bool = False
    allchannels: bool = False
    allcommands: bool = False
    future: bool = False  # the "+@all" bit: commands Redis does not know yet
    bits: int = 0
    keys: list[tuple[bytes, int]] = attrs.Factory(list)
    channels: list[bytes] = attrs.Factory(list)
    firstargs: dict[str, list[bytes]] = attrs.Factory(dict)

    def copy(self) -> Selector:
        return attrs.evolve(
            self,
            keys=list(self.keys),
            channels=list(self.channels),
            firstargs={k: list(v) for k, v in self.firstargs.items()},
        )

    # -- rules

    def _change(self, name: str, allow: bool) -> None:
        mask = CATALOGUE.perm_mask[name]
        if allow:
            self.bits |= mask
        else:
            self.bits &= ~mask
            self.allcommands = False
        self.firstargs.pop(name, None)

    def _category(self, cat: str, allow: bool) -> None:
        c = CATALOGUE
        if allow:
            self.bits |= c.set_mask[cat]
        elif c.set_mask[cat]:
            self.bits &= ~c.set_mask[cat]
            self.allcommands = False
        for name in c.containers[cat]:
            self.firstargs.pop(name, None)

    def apply(self, op: bytes) -> None:
        """One rule (Redis's ACLSetSelector); raises AclError."""
        low = op.lower()
        if low in (b"allkeys", b"~*"):
            self.allkeys, self.keys = True, []
        elif low == b"resetkeys":
            self.allkeys, self.keys = False, []
        elif low in (b"allchannels", b"&*"):
            self.allchannels, self.channels = True, []
        elif low == b"resetchannels":
            self.allchannels, self.channels = False, []
        elif low in (b"allcommands", b"+@all"):
            self.bits, self.allcommands, self.future = CATALOGUE.all_mask, True, True
            self.firstargs = {}
        elif low in (b"nocommands", b"-@all"):
            self.bits, self.allcommands, self.future, self.firstargs = 0, False, False, {}
        elif op[:1] in (b"~", b"%"):
            self._key_pattern(op)
        elif op[:1] == b"&":
            if self.allchannels:
                raise AclError(_EISDIR)
            if _has_spaces(op[1:]):
                raise AclError(_EINVAL)
            if op[1:] not in self.channels:
                self.channels.append(op[1:])
        elif op[:1] in (b"+", b"-") and op[1:2] == b"@":
            cat = op[2:].decode("utf-8", "replace").lower()
            if cat not in CATALOGUE.set_mask:
                raise AclError(_ENOENT)
            self._category(cat, op[:1] == b"+")
        elif op[:1] == b"+":
            self._allow(op[1:].decode("utf-8", "replace"))
        elif op[:1] == b"-":
            name = CATALOGUE.lookup(op[1:].decode("utf-8", "replace"))
            if name is None:
                raise AclError(_ENOENT)
            self._change(name, False)
        else:
            raise AclError(_EINVAL)

    def _key_pattern(self, op: bytes) -> None:
        if self.allkeys:
            raise AclError(_EEXIST)
        flags, offset = 0, 1
        if op[:1] == b"%":
            while offset < len(op):
                ch = op[offset : offset + 1].upper()
                if ch == b"R" and not flags & READ:
                    flags |= READ
                elif ch == b"W" and not flags & WRITE:
                    flags |= WRITE
                elif ch == b"~":
                    offset += 1
                    break
                else:
                    raise AclError(_EINVAL)
                offset += 1
            if not flags:  # Redis accepts "%~p" and then cannot print it (it panics)
                raise AclError(_EINVAL)
        else:
            flags = ALL_PERMS
        pattern = op[offset:]
        if _has_spaces(pattern):
            raise AclError(_EINVAL)
        for i, (p, f) in enumerate(self.keys):
            if p == pattern:
                self.keys[i] = (p, f | flags)
                break
        else:
            self.keys.append((pattern, flags))

    def _allow(self, text: str) -> None:
        if "|" not in text:
            name = CATALOGUE.lookup(text)
            if name is None:
                raise AclError(_ENOENT)
            self._change(name, True)
            return
        base, _, sub = text.rpartition("|")
        name = CATALOGUE.lookup(base)
        if name is None:
            raise AclError(_ENOENT)
        if "|" in name:
            raise AclError(_ECHILD)
        if not sub:
            raise AclError(_EINVAL)
        if CATALOGUE.subs[name]:
            full = CATALOGUE.lookup(text)
            if full is None:
                raise AclError(_ENOENT)
            self._change(full, True)
            return
        args = self.firstargs.setdefault(name, [])
        raw = sub.encode()
        if not any(a.lower() == raw.lower() for a in args):
            args.append(raw)

    # -- rendering

    def command_rules(self) -> str:
        """Redis's ACLDescribeSelectorCommandRules: "+@all"/"-@all", the categories that
        fit best, then single commands (and first args) to match the bitmap exactly."""
        c = CATALOGUE
        additive = not self.future
        rules = ["-@all" if additive else "+@all"]
        fake = Selector()
        fake.apply(b"+@all" if not additive else b"-@all")
        temp_bits = self.bits
        applied: set[str] = set()
        while True:
            best, mindiff, maxsame = "", 2**31 - 1, 0
            for cat in CATEGORIES:
                if cat in applied:
                    continue
                cm = c.count_mask[cat]
                on = (temp_bits & cm).bit_count()
                off = cm.bit_count() - on
                diff, same = (off, on) if additive else (on, off)
                if same > diff and (diff < mindiff or (diff == mindiff and same > maxsame)):
                    best, mindiff, maxsame = cat, diff, same
            if not best:
                break
            fake._category(best, additive)
            if additive:
                temp_bits &= ~c.set_mask[best]
            else:
                temp_bits |= c.set_mask[best]
            rules.append(("+@" if additive else "-@") + best)
            applied.add(best)
        for name in c.order:
            bit = 1 << c.ids[name]
            mine, theirs = bool(self.bits & bit), bool(fake.bits & bit)
            if mine != theirs:
                rules.append(("+" if mine else "-") + name)
                fake._change(name, mine)
            if not mine and name in self.firstargs:
                for arg in self.firstargs[name]:
                    rules.append(f"+{name}|{arg.decode('utf-8', 'replace')}")
        return " ".join(rules)

    def keys_text(self) -> str:
        if self.allkeys:
            return "~*"
        return " ".join(_pattern_text(p, f) for p, f in self.keys)

    def channels_text(self) -> str:
        if self.allchannels:
            return "&*"
        return " ".join("&" + p.decode("utf-8", "surrogateescape") for p in self.channels)

    def describe(self) -> str:
        """One selector in ACL LIST (Redis's ACLDescribeSelector)."""
        parts: list[str] = []
        if self.allkeys:
            parts.append("~*")
        else:
            parts.extend(_pattern_text(p, f) for p, f in self.keys)
        if self.allchannels:
            parts.append("&*")
        else:
            parts.append("resetchannels")
            parts.extend("&" + p.decode("utf-8", "surrogateescape") for p in self.channels)
        parts.append(self.command_rules())
        return " ".join(parts)


def _pattern_text(pattern: bytes, flags: int) -> str:
    prefix = {ALL_PERMS: "~", READ: "%R~", WRITE: "%W~"}[flags]
    return prefix + pattern.decode("utf-8", "surrogateescape")


# ------------------------------------------------------------------ users

_FLAG_ORDER = ("on", "off", "nopass", "skip-sanitize-payload", "sanitize-payload")


@attrs.define
class User:
    """One ACL user (Redis's `user`): flags, password hashes, selectors (root first)."""

    name: bytes
    flags: set[str] = attrs.Factory(lambda: {"off"})
    passwords: list[str] = attrs.Factory(list)
    selectors: list[Selector] = attrs.Factory(lambda: [Selector(root=True)])

    @classmethod
    def default(cls) -> User:
        user = cls(b"default")
        for op in (b"+@all", b"~*", b"&*", b"on", b"nopass"):
            user.apply(op)
        return user

    def copy(self) -> User:
        return User(
            self.name, set(self.flags), list(self.passwords), [s.copy() for s in self.selectors]
        )

    @property
    def enabled(self) -> bool:
        return "on" in self.flags

    @property
    def nopass(self) -> bool:
        return "nopass" in self.flags

    @property
    def root(self) -> Selector:
        return self.selectors[0]

    def unrestricted(self) -> bool:
        """Everything allowed: the fast path of the permission check."""
        r = self.root
        return r.allcommands and r.allkeys and r.allchannels

    def check_password(self, password: bytes) -> bool:
        if not self.enabled:
            return False
        if self.nopass:
            return True
        return hash_password(password) in self.passwords

    def apply(self, op: bytes) -> None:
        """One ACL SETUSER rule (Redis's ACLSetUser); raises AclError."""
        low = op.lower()
        if not op:
            return
        if low in _EXCLUSIVE_FLAGS:
            flag, other = _EXCLUSIVE_FLAGS[low]
            self.flags.discard(other)
            self.flags.add(flag)
        elif low == b"nopass":
            self.flags.add("nopass")
            self.passwords = []
        elif low == b"resetpass":
            self.flags.discard("nopass")
            self.passwords = []
        elif op[:1] in (b">", b"#"):
            if op[:1] == b">":
                digest = hash_password(op[1:])
            else:
                if not _valid_hash(op[1:]):
                    raise AclError(_EBADMSG)
                digest = op[1:].decode()
            if digest not in self.passwords:
                self.passwords.append(digest)
            self.flags.discard("nopass")
        elif op[:1] in (b"<", b"!"):
            if op[:1] == b"<":
                digest = hash_password(op[1:])
            else:
                if not _valid_hash(op[1:]):
                    raise AclError(_EBADMSG)
                digest = op[1:].decode()
            if digest not in self.passwords:
                raise AclError(_ENODEV)
            self.passwords.remove(digest)
        elif op[:1] == b"(" and op[-1:] == b")":
            selector = Selector()
            for part in op[1:-1].split():
                selector.apply(part)
            self.selectors.append(selector)
        elif low == b"clearselectors":
            del self.selectors[1:]
        elif low == b"reset":
            for step in (
                b"resetpass",
                b"resetkeys",
                b"resetchannels",
                b"off",
                b"sanitize-payload",
                b"clearselectors",
                b"-@all",
            ):
                self.apply(step)
        else:
            self.root.apply(op)

    def describe(self) -> str:
        """The user's line in ACL LIST, after "user <name> " (Redis's ACLDescribeUser)."""
        parts = [f for f in _FLAG_ORDER if f in self.flags]
        parts += ["#" + p for p in self.passwords]
        text = " ".join([*parts, self.root.describe()])
        for s in self.selectors[1:]:
            text += f" ({s.describe()})"
        return text

    def flag_list(self) -> list[str]:
        return [f for f in _FLAG_ORDER if f in self.flags]


def merge_selector_args(args: Iterable[bytes]) -> list[bytes]:
    """ACL SETUSER's arguments with a `(...)` selector split over several joined back
    (Redis's ACLMergeSelectorArguments); raises AclError with Redis's unmatched text."""
    out: list[bytes] = []
    selector: bytes | None = None
    start = b""
    for op in args:
        if op[:1] == b"(" and op[-1:] != b")":
            selector, start = op, op
            continue
        if selector is not None:
            selector += b" " + op
            if op[-1:] == b")":
                out.append(selector)
                selector = None
            continue
        out.append(op)
    if selector is not None:
        raise AclError(
            "Unmatched parenthesis in acl selector starting at "
            f"'{start.decode('utf-8', 'replace')}'."
        )
    return out
