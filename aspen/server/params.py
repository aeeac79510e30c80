"""Every configuration parameter of Redis 7.0.15, with its type, default and flags.

The source of CONFIG GET / SET / REWRITE's names and of how each value is parsed and shown:
the names, aliases, bounds, defaults and flags are those of redis-server 7.0.15 (its
`CONFIG GET *`, checked by tests/unit/server/test_config_vs_redis.py). A parser turns what
a client sent into the canonical text CONFIG GET shows, or raises `Invalid` with Redis's own
reason ("argument must be 'yes' or 'no'", ...). Which parameters Aspen honours is decided
by the node (aspen.server.live_config); this table knows nothing of Aspen.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable

import attrs

__all__ = ["PARAMS", "Flag", "Invalid", "Param", "lookup", "notify_flags", "notify_text"]


class Invalid(Exception):
    """A value a parameter refuses; the message is Redis's reason text."""


class Flag(enum.IntFlag):
    NONE = 0
    IMMUTABLE = 1  # only at start-up: "can't set immutable config"
    PROTECTED = 2  # enable-protected-configs is no: "can't set protected config"
    HIDDEN = 4  # CONFIG GET shows it only for its exact name
    SENSITIVE = 8  # its value is redacted from SLOWLOG/MONITOR
    MULTI_ARG = 16  # the value is several space-separated words


NONE, IMMUTABLE, PROTECTED = Flag.NONE, Flag.IMMUTABLE, Flag.PROTECTED
HIDDEN, SENSITIVE, MULTI_ARG = Flag.HIDDEN, Flag.SENSITIVE, Flag.MULTI_ARG

Parser = Callable[[str], str]
Setter = Callable[[str, str], str]
"""(value sent, current value) -> the value CONFIG GET will show; raises Invalid."""


@attrs.frozen
class Param:
    name: str
    default: str  # as CONFIG GET shows it
    setter: Setter  # (the text a client sent, the current value) -> what CONFIG GET shows
    flags: Flag = Flag.NONE
    alias: str | None = None

    def parse(self, text: str, current: str | None = None) -> str:
        return self.setter(text, self.default if current is None else current)


# -- value parsers (each mirrors one of Redis's config types) ----------------------------------

_U64 = 2**64


def _strict_int(text: str) -> int | None:
    """Redis's string2ll: optional '-', no leading zeros, no spaces or '+', fits in 64 bits."""
    body = text[1:] if text.startswith("-") else text
    if text == "0":
        return 0
    if not body or not body.isascii() or not body.isdigit() or body[0] == "0":
        return None
    value = int(text)
    return value if -(2**63) <= value < 2**63 else None


def _strtoll(text: str) -> int | None:
    """C's strtoll(s, &end, 10) with *end == 0 required: leading spaces and a sign allowed,
    saturating at the 64-bit limits (an empty string is 0)."""
    s = text.lstrip(" \t\n\r\v\f")
    sign = 1
    if s[:1] in ("+", "-"):
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s and not (s.isascii() and s.isdigit()):
        return None
    if not s:
        return 0 if not text.strip() or text.strip() in ("+", "-") else None
    return max(-(2**63), min(2**63 - 1, sign * int(s)))


_MEM_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2,
              "g": 1000**3, "gb": 1024**3}


def memtoull(text: str) -> int | None:
    """Redis's memtoull: digits then an optional unit (b, k, kb, m, mb, g, gb, any case);
    the digits saturate at 2**64-1 and the product wraps, as in C."""
    if text.startswith("-"):
        return None
    i = 0
    while i < len(text) and "0" <= text[i] <= "9":
        i += 1
    mul = _MEM_UNITS.get(text[i:].lower())
    if mul is None:
        return None
    digits = text[:i]
    value = min(int(digits), _U64 - 1) if digits else 0
    return (value * mul) % _U64


def _bool(text: str) -> str:
    low = text.lower()
    if low not in ("yes", "no"):
        raise Invalid("argument must be 'yes' or 'no'")
    return low


def _string(text: str) -> str:
    return text


def _enum(members: tuple[tuple[str, int], ...], multi: bool) -> Parser:
    def show(value: int) -> str:
        names: list[str] = []
        unmatched = value
        for name, bits in members:
            if value == bits:
                return name
            if multi and bits and bits == unmatched & bits:
                names.append(name)
                unmatched &= ~bits
        return " ".join(names) if names and not unmatched else "unknown"

    def parse(text: str) -> str:
        words = (text.split(" ") if text else []) if multi else [text]
        value = 0
        for word in words:
            found = [bits for name, bits in members if name == word.lower()]
            if not found:
                break
            value |= found[0]
        else:
            if words:
                return show(value)
        names = ", ".join(name for name, _ in members)
        raise Invalid(f"argument(s) must be one of the following: {names}")

    return parse


def _numeric(low: int, high: int, *, unsigned: bool = False, memory: bool = False,
             percent: bool = False, octal: bool = False) -> Parser:
    def parse(text: str) -> str:
        value: int | None = None
        if memory:
            raw = memtoull(text)
            if raw is not None:
                value = raw - _U64 if raw >= 2**63 else raw  # as C's (long long) cast
        if value is None and percent and len(text) > 1 and text.endswith("%"):
            pct = _strict_int(text[:-1])
            if pct is not None and pct >= 0:
                value = -pct
        if value is None and octal:
            try:
                value = int(text, 8) if text and text.lstrip("+-").isdigit() else None
            except ValueError:
                value = None
        if value is None and not (memory or percent or octal):
            value = _strict_int(text)
        if value is None:
            raise Invalid(
                "argument must be a memory or percent value" if memory and percent
                else "argument must be a memory value" if memory
                else "argument couldn't be parsed as an octal number" if octal
                else "argument couldn't be parsed into an integer"
            )
        if unsigned:
            u = value % _U64
            if not low <= u <= high:
                span = f"{low:o} and {high:o}" if octal else f"{low} and {high}"
                raise Invalid(f"argument must be between {span} inclusive")
        elif percent and value < 0:
            if value < low:
                raise Invalid(f"percentage argument must be less or equal to {-low}")
        elif not low <= value <= high:
            raise Invalid(f"argument must be between {low} and {high} inclusive")
        if percent and value < 0:
            return f"{-value}%"
        if memory:
            return str(value % _U64)
        if octal:
            return f"{value:o}"
        return str(value)

    return parse


def _save(text: str) -> str:
    words = text.split(" ")
    if words == [""]:
        return ""
    if len(words) % 2:
        raise Invalid("Invalid save parameters")
    out = []
    for j, word in enumerate(words):
        value = _strtoll(word)
        if value is None or value < (1 if j % 2 == 0 else 0):
            raise Invalid("Invalid save parameters")
        out.append(str(value))
    return " ".join(out)


_OBUF_CLASSES = {"normal": 0, "slave": 1, "replica": 1, "pubsub": 2}
_OBUF_NAMES = ("normal", "slave", "pubsub")


def _obuf(text: str, current: str) -> str:
    words = text.split(" ")
    if len(words) % 4:
        raise Invalid("Wrong number of arguments in buffer limit configuration.")
    limits: dict[int, tuple[int, int, int]] = {}
    for j in range(0, len(words), 4):
        cls = _OBUF_CLASSES.get(words[j].lower())
        if cls is None:
            raise Invalid("Invalid client class specified in buffer limit configuration.")
        hard, soft = memtoull(words[j + 1]), memtoull(words[j + 2])
        seconds = _strtoll(words[j + 3])
        if hard is None or soft is None or seconds is None or seconds < 0:
            raise Invalid(
                "Error in hard, soft or soft_seconds setting in buffer limit configuration."
            )
        limits[cls] = (hard, soft, seconds % 2**32 if seconds >= 2**31 else seconds)
    old = current.split(" ")
    out = []
    for cls, name in enumerate(_OBUF_NAMES):
        hard, soft, seconds = limits.get(
            cls, (int(old[cls * 4 + 1]), int(old[cls * 4 + 2]), int(old[cls * 4 + 3]))
        )
        out.append(f"{name} {hard} {soft} {seconds}")
    return " ".join(out)


def _oom_score_adj_values(text: str) -> str:
    words = text.split(" ")
    if len(words) != 3:
        raise Invalid("wrong number of arguments")
    out = []
    for word in words:
        value = _strtoll(word)
        if value is None or not -2000 <= value <= 2000:
            raise Invalid("Invalid oom-score-adj-values, elements must be between -2000 and 2000.")
        out.append(str(value))
    return " ".join(out)


NOTIFY_BITS = {
    "K": 1 << 0, "E": 1 << 1, "g": 1 << 2, "$": 1 << 3, "l": 1 << 4, "s": 1 << 5,
    "h": 1 << 6, "z": 1 << 7, "x": 1 << 8, "e": 1 << 9, "t": 1 << 10, "m": 1 << 11,
    "d": 1 << 13, "n": 1 << 14,
}
NOTIFY_ALL = sum(NOTIFY_BITS[c] for c in "g$lshzxetd")


def notify_flags(text: str) -> int:
    """notify-keyspace-events' classes as bits (Redis's values); ValueError if invalid."""
    flags = 0
    for c in text:
        if c == "A":
            flags |= NOTIFY_ALL
        elif c in NOTIFY_BITS:
            flags |= NOTIFY_BITS[c]
        else:
            raise ValueError(c)
    return flags


def notify_text(flags: int, shown: bool = True) -> str:
    """The classes as CONFIG GET shows them ("AKE", "g$K", ...): with every class of 'A'
    Redis shows "A" and drops 'n' though it stays set; `shown=False` keeps it (what is
    stored, so nothing is lost)."""
    if flags & NOTIFY_ALL == NOTIFY_ALL:
        out = "A" + ("n" if flags & NOTIFY_BITS["n"] and not shown else "")
    else:
        out = "".join(c for c in "g$lshzxetdn" if flags & NOTIFY_BITS[c])
    return out + "".join(c for c in "KEm" if flags & NOTIFY_BITS[c])


def _notify_keyspace_events(text: str) -> str:
    try:
        return notify_text(notify_flags(text), shown=False)
    except ValueError:
        raise Invalid("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.") from None


def _bind(text: str) -> str:
    words = text.split(" ")
    if len(words) > 16:
        raise Invalid("Too many bind addresses specified.")
    return " ".join(words)


def _percentiles(text: str) -> str:
    words = text.split(" ")
    if words == [""]:
        return ""
    out = []
    for word in words:
        try:
            if word != word.strip() or not word:
                raise ValueError(word)
            value = float(word)
        except ValueError:
            raise Invalid("Invalid latency-tracking-info-percentiles parameters") from None
        if math.isnan(value):
            raise Invalid("Invalid latency-tracking-info-percentiles parameters")
        if not 0.0 <= value <= 100.0:
            raise Invalid(
                "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]"
            )
        out.append(f"{value:f}".rstrip("0").rstrip("."))
    return " ".join(out)


def _dir(text: str) -> str:
    return text


# -- the table -----------------------------------------------------------------------------

def _one(parse: Parser) -> Setter:
    return lambda text, current: parse(text)


def _b(name: str, default: str, flags: Flag = NONE, alias: str | None = None) -> Param:
    return Param(name, default, _one(_bool), flags, alias)


def _s(name: str, default: str, flags: Flag = NONE, alias: str | None = None) -> Param:
    return Param(name, default, _one(_string), flags, alias)


def _e(name: str, members: tuple[tuple[str, int], ...], default: str, flags: Flag = NONE,
       alias: str | None = None) -> Param:
    return Param(name, default, _one(_enum(members, bool(flags & MULTI_ARG))), flags, alias)


def _i(name: str, low: int, high: int, default: str, flags: Flag = NONE,
       alias: str | None = None, unsigned: bool = False) -> Param:
    return Param(name, default, _one(_numeric(low, high, unsigned=unsigned)), flags, alias)


def _m(name: str, low: int, high: int, default: str, flags: Flag = NONE,
       alias: str | None = None, unsigned: bool = False, percent: bool = False) -> Param:
    parse = _numeric(low, high, unsigned=unsigned, memory=True, percent=percent)
    return Param(name, default, _one(parse), flags, alias)


def _o(name: str, low: int, high: int, default: str, flags: Flag = NONE,
       alias: str | None = None, unsigned: bool = False) -> Param:
    parse = _numeric(low, high, unsigned=unsigned, octal=True)
    return Param(name, default, _one(parse), flags, alias)


def _x(name: str, parse: Parser | Setter, default: str, flags: Flag = NONE,
       alias: str | None = None) -> Param:
    setter = parse if parse is _obuf else _one(parse)  # type: ignore[arg-type]
    return Param(name, default, setter, flags, alias)


def _n(*names: str) -> tuple[tuple[str, int], ...]:
    return tuple((name, i) for i, name in enumerate(names))


MAXMEMORY_POLICY = _n("volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl",
                      "allkeys-lru", "allkeys-lfu", "allkeys-random", "noeviction")
SYSLOG_FACILITY = _n("user", "local0", "local1", "local2", "local3", "local4", "local5",
                     "local6", "local7")
LOGLEVEL = _n("debug", "verbose", "notice", "warning")
SUPERVISED_MODE = _n("upstart", "systemd", "auto", "no")
AOF_FSYNC = _n("everysec", "always", "no")
SHUTDOWN_ON_SIG = (("default", 0), ("save", 1), ("nosave", 2), ("now", 4), ("force", 8))
REPL_DISKLESS_LOAD = _n("disabled", "on-empty-db", "swapdb")
TLS_AUTH_CLIENTS = _n("no", "yes", "optional")
OOM_SCORE_ADJ = (("no", 0), ("yes", 1), ("relative", 1), ("absolute", 2))
ACL_PUBSUB_DEFAULT = (("allchannels", 1), ("resetchannels", 0))
SANITIZE_DUMP_PAYLOAD = _n("no", "yes", "clients")
PROTECTED_ACTION = _n("no", "yes", "local")
CLUSTER_PREFERRED_ENDPOINT_TYPE = _n("ip", "hostname", "unknown-endpoint")
PROPAGATION_ERROR_BEHAVIOR = _n("ignore", "panic", "panic-on-replicas")

_INT_MAX, _INT_MIN, _UINT_MAX = 2**31 - 1, -(2**31), 2**32 - 1
_LONG_MAX, _ULLONG_MAX = 2**63 - 1, 2**64 - 1
_OBUF_DEFAULT = "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"

PARAMS: tuple[Param, ...] = (
    _b("rdbchecksum", "yes", IMMUTABLE),
    _b("daemonize", "no", IMMUTABLE),
    _b("io-threads-do-reads", "no", IMMUTABLE),
    _b("always-show-logo", "no", IMMUTABLE),
    _b("protected-mode", "yes"),
    _b("rdbcompression", "yes"),
    _b("rdb-del-sync-files", "no"),
    _b("activerehashing", "yes"),
    _b("stop-writes-on-bgsave-error", "yes"),
    _b("set-proc-title", "yes", IMMUTABLE),
    _b("dynamic-hz", "yes"),
    _b("lazyfree-lazy-eviction", "no"),
    _b("lazyfree-lazy-expire", "no"),
    _b("lazyfree-lazy-server-del", "no"),
    _b("lazyfree-lazy-user-del", "no"),
    _b("lazyfree-lazy-user-flush", "no"),
    _b("repl-disable-tcp-nodelay", "no"),
    _b("repl-diskless-sync", "yes"),
    _b("aof-rewrite-incremental-fsync", "yes"),
    _b("no-appendfsync-on-rewrite", "no"),
    _b("cluster-require-full-coverage", "yes"),
    _b("rdb-save-incremental-fsync", "yes"),
    _b("aof-load-truncated", "yes"),
    _b("aof-use-rdb-preamble", "yes"),
    _b("aof-timestamp-enabled", "no"),
    _b("cluster-replica-no-failover", "no", alias="cluster-slave-no-failover"),
    _b("replica-lazy-flush", "no", alias="slave-lazy-flush"),
    _b("replica-serve-stale-data", "yes", alias="slave-serve-stale-data"),
    _b("replica-read-only", "yes", alias="slave-read-only"),
    _b("replica-ignore-maxmemory", "yes", alias="slave-ignore-maxmemory"),
    _b("jemalloc-bg-thread", "yes"),
    _b("activedefrag", "no"),
    _b("syslog-enabled", "no", IMMUTABLE),
    _b("cluster-enabled", "no", IMMUTABLE),
    _b("appendonly", "no"),
    _b("cluster-allow-reads-when-down", "no"),
    _b("cluster-allow-pubsubshard-when-down", "yes"),
    _b("crash-log-enabled", "yes"),
    _b("crash-memcheck-enabled", "yes"),
    _b("use-exit-on-panic", "no", HIDDEN),
    _b("disable-thp", "yes", IMMUTABLE),
    _b("cluster-allow-replica-migration", "yes"),
    _b("replica-announced", "yes"),
    _b("latency-tracking", "yes"),
    _b("aof-disable-auto-gc", "no"),
    _b("replica-ignore-disk-write-errors", "no"),
    _s("aclfile", "", IMMUTABLE),
    _s("unixsocket", "", IMMUTABLE),
    _s("pidfile", "", IMMUTABLE),
    _s("replica-announce-ip", "", alias="slave-announce-ip"),
    _s("masteruser", "", SENSITIVE),
    _s("cluster-announce-ip", ""),
    _s("cluster-config-file", "nodes.conf", IMMUTABLE),
    _s("cluster-announce-hostname", ""),
    _s("syslog-ident", "redis", IMMUTABLE),
    _s("dbfilename", "dump.rdb", PROTECTED),
    _s("appendfilename", "appendonly.aof", IMMUTABLE),
    _s("appenddirname", "appendonlydir", IMMUTABLE),
    _s("server_cpulist", "", IMMUTABLE),
    _s("bio_cpulist", "", IMMUTABLE),
    _s("aof_rewrite_cpulist", "", IMMUTABLE),
    _s("bgsave_cpulist", "", IMMUTABLE),
    _s("ignore-warnings", ""),
    _s("proc-title-template", "{title} {listen-addr} {server-mode}"),
    _s("bind-source-addr", ""),
    _s("logfile", "", IMMUTABLE),
    _s("masterauth", "", SENSITIVE),
    _s("requirepass", "", SENSITIVE),
    _e("supervised", SUPERVISED_MODE, "no", IMMUTABLE),
    _e("syslog-facility", SYSLOG_FACILITY, "local0", IMMUTABLE),
    _e("repl-diskless-load", REPL_DISKLESS_LOAD, "disabled"),
    _e("loglevel", LOGLEVEL, "notice"),
    _e("maxmemory-policy", MAXMEMORY_POLICY, "noeviction"),
    _e("appendfsync", AOF_FSYNC, "everysec"),
    _e("oom-score-adj", OOM_SCORE_ADJ, "no"),
    _e("acl-pubsub-default", ACL_PUBSUB_DEFAULT, "resetchannels"),
    _e("sanitize-dump-payload", SANITIZE_DUMP_PAYLOAD, "no"),
    _e("enable-protected-configs", PROTECTED_ACTION, "no", IMMUTABLE),
    _e("enable-debug-command", PROTECTED_ACTION, "no", IMMUTABLE),
    _e("enable-module-command", PROTECTED_ACTION, "no", IMMUTABLE),
    _e("cluster-preferred-endpoint-type", CLUSTER_PREFERRED_ENDPOINT_TYPE, "ip"),
    _e("propagation-error-behavior", PROPAGATION_ERROR_BEHAVIOR, "ignore"),
    _e("shutdown-on-sigint", SHUTDOWN_ON_SIG, "default", MULTI_ARG),
    _e("shutdown-on-sigterm", SHUTDOWN_ON_SIG, "default", MULTI_ARG),
    _i("databases", 1, _INT_MAX, "16", IMMUTABLE),
    _i("port", 0, 65535, "6379"),
    _i("io-threads", 1, 128, "1", IMMUTABLE),
    _i("auto-aof-rewrite-percentage", 0, _INT_MAX, "100"),
    _i("cluster-replica-validity-factor", 0, _INT_MAX, "10", alias="cluster-slave-validity-factor"),
    _i("list-max-listpack-size", _INT_MIN, _INT_MAX, "-2", alias="list-max-ziplist-size"),
    _i("tcp-keepalive", 0, _INT_MAX, "300"),
    _i("cluster-migration-barrier", 0, _INT_MAX, "1"),
    _i("active-defrag-cycle-min", 1, 99, "1"),
    _i("active-defrag-cycle-max", 1, 99, "25"),
    _i("active-defrag-threshold-lower", 0, 1000, "10"),
    _i("active-defrag-threshold-upper", 0, 1000, "100"),
    _i("lfu-log-factor", 0, _INT_MAX, "10"),
    _i("lfu-decay-time", 0, _INT_MAX, "1"),
    _i("replica-priority", 0, _INT_MAX, "100", alias="slave-priority"),
    _i("repl-diskless-sync-delay", 0, _INT_MAX, "5"),
    _i("maxmemory-samples", 1, _INT_MAX, "5"),
    _i("maxmemory-eviction-tenacity", 0, 100, "10"),
    _i("timeout", 0, _INT_MAX, "0"),
    _i("replica-announce-port", 0, 65535, "0", alias="slave-announce-port"),
    _i("tcp-backlog", 0, _INT_MAX, "511", IMMUTABLE),
    _i("cluster-port", 0, 65535, "0", IMMUTABLE),
    _i("cluster-announce-bus-port", 0, 65535, "0"),
    _i("cluster-announce-port", 0, 65535, "0"),
    _i("cluster-announce-tls-port", 0, 65535, "0"),
    _i("repl-timeout", 1, _INT_MAX, "60"),
    _i("repl-ping-replica-period", 1, _INT_MAX, "10", alias="repl-ping-slave-period"),
    _i("list-compress-depth", 0, _INT_MAX, "0"),
    _i("rdb-key-save-delay", _INT_MIN, _INT_MAX, "0", HIDDEN),
    _i("key-load-delay", _INT_MIN, _INT_MAX, "0", HIDDEN),
    _i("active-expire-effort", 1, 10, "1"),
    _i("hz", 0, _INT_MAX, "10"),
    _i("min-replicas-to-write", 0, _INT_MAX, "0", alias="min-slaves-to-write"),
    _i("min-replicas-max-lag", 0, _INT_MAX, "10", alias="min-slaves-max-lag"),
    _i("watchdog-period", 0, _INT_MAX, "0", HIDDEN),
    _i("shutdown-timeout", 0, _INT_MAX, "10"),
    _i("repl-diskless-sync-max-replicas", 0, _INT_MAX, "0"),
    _i("maxclients", 1, _UINT_MAX, "10000", unsigned=True),
    _o("unixsocketperm", 0, 0o777, "0", IMMUTABLE, unsigned=True),
    _i("socket-mark-id", 0, _UINT_MAX, "0", IMMUTABLE, unsigned=True),
    _i("active-defrag-max-scan-fields", 1, _LONG_MAX, "1000"),
    _i("slowlog-max-len", 0, _LONG_MAX, "128"),
    _i("acllog-max-len", 0, _LONG_MAX, "128"),
    _i("busy-reply-threshold", 0, _LONG_MAX, "5000", alias="lua-time-limit"),
    _i("cluster-node-timeout", 0, _LONG_MAX, "15000"),
    _i("slowlog-log-slower-than", -1, _LONG_MAX, "10000"),
    _i("latency-monitor-threshold", 0, _LONG_MAX, "0"),
    _m("proto-max-bulk-len", 1024 * 1024, _LONG_MAX, "536870912"),
    _i("stream-node-max-entries", 0, _LONG_MAX, "100"),
    _m("repl-backlog-size", 1, _LONG_MAX, "1048576"),
    _m("maxmemory", 0, _ULLONG_MAX, "0", unsigned=True),
    _m("cluster-link-sendbuf-limit", 0, _ULLONG_MAX, "0", unsigned=True),
    _i("hash-max-listpack-entries", 0, _LONG_MAX, "512",
       alias="hash-max-ziplist-entries", unsigned=True),
    _i("set-max-intset-entries", 0, _LONG_MAX, "512", unsigned=True),
    _i("zset-max-listpack-entries", 0, _LONG_MAX, "128",
       alias="zset-max-ziplist-entries", unsigned=True),
    _m("active-defrag-ignore-bytes", 1, _LONG_MAX, "104857600", unsigned=True),
    _m("hash-max-listpack-value", 0, _LONG_MAX, "64",
       alias="hash-max-ziplist-value", unsigned=True),
    _m("stream-node-max-bytes", 0, _LONG_MAX, "4096", unsigned=True),
    _m("zset-max-listpack-value", 0, _LONG_MAX, "64",
       alias="zset-max-ziplist-value", unsigned=True),
    _m("hll-sparse-max-bytes", 0, _LONG_MAX, "3000", unsigned=True),
    _i("tracking-table-max-keys", 0, _LONG_MAX, "1000000", unsigned=True),
    _m("client-query-buffer-limit", 1024 * 1024, _LONG_MAX, "1073741824", unsigned=True),
    _m("maxmemory-clients", -100, _LONG_MAX, "0", percent=True),
    _i("repl-backlog-ttl", 0, _LONG_MAX, "3600"),
    _m("auto-aof-rewrite-min-size", 0, _LONG_MAX, "67108864"),
    _i("loading-process-events-interval-bytes", 1024, _INT_MAX, "2097152", HIDDEN),
    _i("tls-port", 0, 65535, "0"),
    _i("tls-session-cache-size", 0, _INT_MAX, "20480"),
    _i("tls-session-cache-timeout", 0, _INT_MAX, "300"),
    _b("tls-cluster", "no"),
    _b("tls-replication", "no"),
    _e("tls-auth-clients", TLS_AUTH_CLIENTS, "yes"),
    _b("tls-prefer-server-ciphers", "no"),
    _b("tls-session-caching", "yes"),
    _s("tls-cert-file", ""),
    _s("tls-key-file", ""),
    _s("tls-key-file-pass", ""),
    _s("tls-client-cert-file", ""),
    _s("tls-client-key-file", ""),
    _s("tls-client-key-file-pass", ""),
    _s("tls-dh-params-file", ""),
    _s("tls-ca-cert-file", ""),
    _s("tls-ca-cert-dir", ""),
    _s("tls-protocols", ""),
    _s("tls-ciphers", ""),
    _s("tls-ciphersuites", ""),
    _x("dir", _dir, "", PROTECTED),
    _x("save", _save, "3600 1 300 100 60 10000", MULTI_ARG),
    _x("client-output-buffer-limit", _obuf, _OBUF_DEFAULT, MULTI_ARG),
    _x("oom-score-adj-values", _oom_score_adj_values, "0 200 800", MULTI_ARG),
    _x("notify-keyspace-events", _notify_keyspace_events, ""),
    _x("bind", _bind, "* -::*", MULTI_ARG),
    _x("replicaof", _string, "", IMMUTABLE | MULTI_ARG, alias="slaveof"),
    _x("latency-tracking-info-percentiles", _percentiles, "50 99 99.9", MULTI_ARG),
)



def _then(setter: Setter, after: Callable[[str], str]) -> Setter:
    return lambda text, current: after(setter(text, current))


def _clamp(low: int, high: int) -> Callable[[str], str]:
    return lambda value: str(min(max(int(value), low), high))


def _no_save_and_nosave(value: str) -> str:
    words = value.split()
    if "save" in words and "nosave" in words:
        raise Invalid("shutdown options SAVE and NOSAVE can't be used simultaneously")
    return value


# What Redis does after parsing: hz is capped to 1-500, the backlog is at least 16kb, a
# shutdown may not both save and not save.
_AFTER: dict[str, Callable[[str], str]] = {
    "hz": _clamp(1, 500),
    "repl-backlog-size": _clamp(16 * 1024, 2**63 - 1),
    "shutdown-on-sigint": _no_save_and_nosave,
    "shutdown-on-sigterm": _no_save_and_nosave,
}
PARAMS = tuple(
    attrs.evolve(p, setter=_then(p.setter, _AFTER[p.name])) if p.name in _AFTER else p
    for p in PARAMS
)

_BY_NAME: dict[str, Param] = {}
for _p in PARAMS:
    _BY_NAME[_p.name] = _p
    if _p.alias:
        _BY_NAME[_p.alias] = _p


def lookup(name: str) -> Param | None:
    """A parameter by its name or alias, any letter case."""
    return _BY_NAME.get(name.lower())


def entry(name: str) -> tuple[str, Param] | None:
    """(the table entry's name: the alias when `name` is one, the parameter)."""
    param = _BY_NAME.get(name.lower())
    return None if param is None else (name.lower(), param)


def names() -> list[tuple[str, Param]]:
    """Every name CONFIG GET may show (aliases included) with its parameter."""
    return list(_BY_NAME.items())
