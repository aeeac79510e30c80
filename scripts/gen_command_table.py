"""The table of every Redis 7.0.15 command in docs/compatibility.md ("Every Redis 7.0
command"), generated from Redis's command list and Aspen's command table.

    python scripts/gen_command_table.py --capture PORT   # redis-server 7.0.15 -> the JSON
    python scripts/gen_command_table.py --write          # regenerate the docs section
    python scripts/gen_command_table.py                  # print the table

Redis's commands (name, group, summary, subcommands) come from
scripts/redis-7.0.15-commands.json (captured from redis-server's COMMAND DOCS); Aspen's from
`aspen.kv.commands.ALL_COMMANDS` (what COMMAND, COMMAND COUNT and COMMAND DOCS answer);
the "differs" and "not supported" notes from `NOTES` below. tests/unit/test_command_table.py
checks that the checked-in section is what this prints.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "scripts" / "redis-7.0.15-commands.json"
DOC = ROOT / "docs" / "compatibility.md"
BEGIN, END = "<!-- command-table:begin -->", "<!-- command-table:end -->"

NOTES: dict[str, str] = {
    # differs
    "config": "per node, not replicated; every parameter accepted, some honoured (CONFIG above)",
    "info": "Raft meanings for persistence and replication, an extra Raft section (INFO above)",
    "wait": "counts Raft followers whose match index covers the commit index (WAIT above)",
    "slowlog": "per node; durations include the write's commit",
    "save": "per node, from its applied state (RDB files section)",
    "bgsave": "per node, from its applied state (RDB files section)",
    "latency": "per node: the command / fast-command events (durations include the commit)",
    "monitor": "per node: the commands this node's clients send (not what it applies from "
    "the log)",
    "client": "PAUSE and KILL per node; CLIENT LIST fields Aspen cannot know are fixed; "
    "NO-TOUCH is 7.2's (unknown subcommand, as in 7.0.15)",
    "spop": "random picks seeded by the log position (same on every replica)",
    "srandmember": "random picks seeded by the log position",
    "hrandfield": "random picks seeded by the log position",
    "zrandmember": "random picks seeded by the log position",
    "randomkey": "random picks seeded by the log position",
    "blpop": "blocking: see Blocking commands", "brpop": "blocking: see Blocking commands",
    "blmove": "blocking: see Blocking commands", "brpoplpush": "blocking: see Blocking commands",
    "blmpop": "blocking: see Blocking commands", "bzpopmin": "blocking: see Blocking commands",
    "bzpopmax": "blocking: see Blocking commands", "bzmpop": "blocking: see Blocking commands",
    "object": "encodings reported as Redis would for the same contents",
    "memory": "MEMORY USAGE estimates Redis's sizes",
    "eval": "runs on every replica through the log", "evalsha": "runs on every replica",
    "fcall": "runs on every replica through the log", "script": "replicated script cache",
    "function": "replicated libraries", "acl": "users replicated through the log",
    "hello": "reports role master on every node", "pubsub": "messages cross the cluster mesh",
    "publish": "delivered on every node of the cluster",
    "spublish": "one Raft group serves every shard channel: delivered on every node",
    "lolwut": "VERSION 5 and 6 draw Aspen's own picture (and Redis's version line)",
}

_NOT_SUPPORTED = {
    "cluster": "Aspen is not a Redis Cluster: one Raft group replicates the keyspace",
    "readonly": "Redis Cluster only", "readwrite": "Redis Cluster only",
    "asking": "Redis Cluster only", "restore-asking": "Redis Cluster only",
    "sync": "replication is Raft's, not Redis's", "psync": "replication is Raft's",
    "replconf": "replication is Raft's", "replicaof": "membership is Raft's (ASPEN.*)",
    "slaveof": "membership is Raft's (ASPEN.*)", "failover": "leadership moves with "
    "ASPEN.TRANSFER-LEADER", "role": "not implemented (INFO replication has the roles)",
    "module": "no modules", "debug": "not implemented (a debugging aid)",
    "bgrewriteaof": "the Raft log is compacted by snapshots",
    "shutdown": "stop a node with SIGTERM (it hands leadership over first)",
    "migrate": "not implemented (optional in issue 16)",
    "pfdebug": "not implemented (a debugging aid)", "pfselftest": "not implemented",
    "sentinel": "no Sentinel: failover is Raft's",
}


def capture(port: int) -> None:
    from harness.resp_wire import RespClient

    docs = RespClient(port).call([b"COMMAND", b"DOCS"])
    assert isinstance(docs, list)
    out = {}
    for i in range(0, len(docs), 2):
        name = docs[i].decode()
        fields = {docs[i + 1][j].decode(): docs[i + 1][j + 1]
                  for j in range(0, len(docs[i + 1]), 2)}
        subs = fields.get("subcommands") or []
        out[name] = {
            "group": fields["group"].decode(),
            "summary": fields["summary"].decode(),
            "subcommands": sorted(subs[j].decode() for j in range(0, len(subs), 2)),
        }
    DATA.write_text(json.dumps(dict(sorted(out.items())), indent=1) + "\n")


def rows() -> list[tuple[str, str, str, str]]:
    """(command, group, status, note) for every Redis command, then Aspen's own."""
    from aspen.kv.commands import ALL_COMMANDS

    redis_cmds = json.loads(DATA.read_text())
    ours = {s.name: s for s in ALL_COMMANDS}
    out = []
    for name, info in redis_cmds.items():
        spec = ours.get(name)
        if spec is None:
            note = _NOT_SUPPORTED.get(name, "not implemented yet")
            out.append((name, info["group"], "not supported", note))
            continue
        missing = sorted(set(info["subcommands"]) - {s.name for s in spec.subcommands})
        note = NOTES.get(name, "")
        if missing:
            note = (note + "; " if note else "") + "missing " + ", ".join(
                m.split("|", 1)[1].upper() for m in missing)
        out.append((name, info["group"], "differs" if note else "supported", note))
    for name, spec in sorted(ours.items()):
        if name not in redis_cmds:
            out.append((name, spec.group, "Aspen only", spec.summary))
    return out


def table() -> str:
    lines = [BEGIN, "", "| command | group | status | notes |", "| --- | --- | --- | --- |"]
    for name, group, status, note in rows():
        lines.append(f"| {name.upper()} | {group} | {status} | {note} |")
    counts: dict[str, int] = {}
    for _, _, status, _ in rows():
        counts[status] = counts.get(status, 0) + 1
    lines += ["", "Totals: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + ".",
              "", END]
    return "\n".join(lines)


def write() -> None:
    text = DOC.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    DOC.write_text(text[:start] + table() + text[end:])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--capture"]:
        capture(int(sys.argv[2]))
    elif sys.argv[1:] == ["--write"]:
        write()
    else:
        print(table())
