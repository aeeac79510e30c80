"""Command specs of the per-node server commands (appended to the command table): SLOWLOG,
WAIT and CLIENT KILL. Names, arities, flags, ACL categories and summaries are Redis 7.0.15's;
they are answered by the node (`Route.NODE`: aspen.server.commands.ServerCommands, which the
node's `AdminCommands` is)."""

from __future__ import annotations

from aspen.kv.spec import CommandSpec, KeySpec, Route

__all__ = ["CLIENT_SUBS", "PUBSUB_SPECS", "PUBSUB_SUBS", "SERVER_SPECS"]

_ADMIN = "@admin @slow @dangerous"


def _n(name: str, arity: int, flags: str, acl: str, group: str, summary: str, since: str,
       handler: str = "", subcommands: tuple[CommandSpec, ...] = ()) -> CommandSpec:
    return CommandSpec(name, arity, frozenset(flags.split()), 0, 0, 0, Route.NODE, group,
                       summary, since, tuple(acl.split()), subcommands, handler=handler)


_SLOWLOG_SUBS = (
    _n("slowlog|get", -2, "admin loading stale", _ADMIN, "server",
       "Get the slow log's entries", "2.2.12", "cmd_slowlog"),
    _n("slowlog|len", 2, "admin loading stale", _ADMIN, "server",
       "Get the slow log's length", "2.2.12", "cmd_slowlog"),
    _n("slowlog|reset", 2, "admin loading stale", _ADMIN, "server",
       "Clear all entries from the slow log", "2.2.12", "cmd_slowlog"),
    _n("slowlog|help", 2, "loading stale", "@slow", "server",
       "Show helpful text about the different subcommands", "6.2.0", "cmd_slowlog"),
)

_LATENCY_ADMIN = "admin noscript loading stale"
_LATENCY_SUBS = (
    _n("latency|latest", 2, _LATENCY_ADMIN, _ADMIN, "server",
       "Return the latest latency samples for all events.", "2.8.13", "cmd_latency"),
    _n("latency|history", 3, _LATENCY_ADMIN, _ADMIN, "server",
       "Return timestamp-latency samples for the event.", "2.8.13", "cmd_latency"),
    _n("latency|reset", -2, _LATENCY_ADMIN, _ADMIN, "server",
       "Reset latency data for one or more events.", "2.8.13", "cmd_latency"),
    _n("latency|doctor", 2, _LATENCY_ADMIN, _ADMIN, "server",
       "Return a human readable latency analysis report.", "2.8.13", "cmd_latency"),
    _n("latency|histogram", -2, _LATENCY_ADMIN, _ADMIN, "server",
       "Return the cumulative distribution of latencies of a subset of commands or all.",
       "7.0.0", "cmd_latency"),
    _n("latency|help", 2, "loading stale", "@slow", "server",
       "Show helpful text about the different subcommands.", "2.8.13", "cmd_latency"),
)

SERVER_SPECS: tuple[CommandSpec, ...] = (
    _n("latency", -2, "", "@slow", "server", "A container for latency diagnostics commands",
       "2.8.13", "cmd_latency", _LATENCY_SUBS),
    _n("slowlog", -2, "", "@slow", "server", "A container for slow log commands", "2.2.12",
       "cmd_slowlog", _SLOWLOG_SUBS),
    CommandSpec("lolwut", -1, frozenset({"readonly", "fast"}), 0, 0, 0, Route.SESSION, "server",
                "Display some computer art and the Redis version", "5.0.0", ("@read", "@fast"),
                handler="cmd_lolwut"),
    _n("monitor", 1, "admin noscript loading stale", _ADMIN, "server",
       "Listen for all requests received by the server in real time", "1.0.0", "cmd_monitor"),
    _n("wait", 3, "noscript", "@slow @connection", "generic",
       "Wait for the synchronous replication of all the write commands sent in the context "
       "of the current connection", "3.0.0", "cmd_wait"),
)

_CLIENT_ADMIN = "admin noscript loading stale"
CLIENT_SUBS: tuple[CommandSpec, ...] = (
    _n("client|kill", -3, _CLIENT_ADMIN, _ADMIN + " @connection",
       "connection", "Kill the connection of a client", "2.4.0", "cmd_client_kill"),
    _n("client|pause", -3, _CLIENT_ADMIN, _ADMIN + " @connection", "connection",
       "Stop processing commands from clients for some time", "2.9.50", "cmd_client_pause"),
    _n("client|unpause", 2, _CLIENT_ADMIN, _ADMIN + " @connection", "connection",
       "Resume processing of clients that were paused", "6.2.0", "cmd_client_unpause"),
    _n("client|no-evict", 3, _CLIENT_ADMIN, _ADMIN + " @connection", "connection",
       "Set client eviction mode for the current connection", "7.0.0", "cmd_client_no_evict"),
    CommandSpec("client|reply", 3, frozenset({"noscript", "loading", "stale"}), 0, 0, 0,
                Route.SESSION, "connection", "Instruct the server whether to reply to commands",
                "3.2.0", ("@slow", "@connection"), handler="cmd_client_reply"),
    _n("client|getredir", 2, "noscript loading stale", "@slow @connection", "connection",
       "Get tracking notifications redirection client ID if any", "6.0.0",
       "cmd_client_getredir"),
)

# Sharded pub/sub: answered by the session (aspen.kv.session), like SUBSCRIBE; one Raft group
# serves every shard channel. The channels are "keys" (not_key) as in Redis 7.0.
_SHARD_KEYS = (KeySpec(("not_key",), 1, "range", lastkey=-1),)


def _s(name: str, arity: int, flags: str, acl: str, summary: str, handler: str,
       keys: tuple[int, int, int] = (0, 0, 0), key_specs: tuple[KeySpec, ...] = (),
       subscribed_ok: bool = False) -> CommandSpec:
    return CommandSpec(name, arity, frozenset(flags.split()), keys[0], keys[1], keys[2],
                       Route.SESSION, "pubsub", summary, "7.0.0", tuple(acl.split()),
                       key_specs=key_specs, handler=handler, subscribed_ok=subscribed_ok)


PUBSUB_SPECS: tuple[CommandSpec, ...] = (
    _s("ssubscribe", -2, "pubsub noscript loading stale", "@pubsub @slow",
       "Listen for messages published to the given shard channels", "cmd_ssubscribe",
       (1, -1, 1), _SHARD_KEYS, subscribed_ok=True),
    _s("sunsubscribe", -1, "pubsub noscript loading stale", "@pubsub @slow",
       "Stop listening for messages posted to the given shard channels", "cmd_sunsubscribe",
       (1, -1, 1), _SHARD_KEYS, subscribed_ok=True),
    _s("spublish", 3, "pubsub loading stale fast", "@pubsub @fast",
       "Post a message to a shard channel", "cmd_spublish", (1, 1, 1),
       (KeySpec(("not_key",), 1, "range", lastkey=0),)),
)
PUBSUB_SUBS: tuple[CommandSpec, ...] = (
    _s("pubsub|shardchannels", -2, "pubsub loading stale", "@pubsub @slow",
       "List active shard channels", "cmd_pubsub"),
    _s("pubsub|shardnumsub", -2, "pubsub loading stale", "@pubsub @slow",
       "Get the count of subscribers for shard channels", "cmd_pubsub"),
)
