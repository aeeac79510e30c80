"""Online backups of a cluster and restoring them into a new one.

A backup is one Raft snapshot taken at a committed index (ClusterNode.backup_snapshot: a
ReadIndex round, then a snapshot once this node has applied that far), so it holds every
write acknowledged before it was asked for, while writes go on. `GET /backup` on any node's
control plane (password-protected like the other admin routes) answers the backup file:

    MAGIC | u32 header length | JSON header | snapshot data

The header: {"format": 1, "index", "term", "voters", "learners", "node", "created_ms",
"data_bytes", "crc32"} (the CRC-32 of the data). `aspen restore` checks it and writes the
snapshot into each new node's empty data directory as the node's Raft snapshot, with the new
configs' node ids as voters (the old cluster's peer addresses and client sessions are dropped
from it: the new cluster must not talk to the old one).
"""

from __future__ import annotations

import json
import struct
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import cbor2

from aspen.raft.types import HardState, Membership, SnapshotMeta

MAGIC = b"ASPENBACKUP1\n"
_U32 = struct.Struct(">I")


class BackupError(Exception):
    """The file is not a usable backup, or the target cannot take it."""


@attrs.frozen
class Backup:
    index: int
    term: int
    header: dict[str, Any]
    data: bytes


def encode_backup(meta: SnapshotMeta, data: bytes, node: int) -> bytes:
    header = {
        "format": 1, "index": meta.index, "term": meta.term,
        "voters": sorted(meta.membership.voters), "learners": sorted(meta.membership.learners),
        "node": node, "created_ms": int(time.time() * 1000), "data_bytes": len(data),
        "crc32": zlib.crc32(data),
    }
    raw = json.dumps(header, sort_keys=True).encode()
    return MAGIC + _U32.pack(len(raw)) + raw + data


def decode_backup(blob: bytes) -> Backup:
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 4:
        raise BackupError("not an Aspen backup file (bad magic)")
    (n,) = _U32.unpack_from(blob, len(MAGIC))
    start = len(MAGIC) + 4
    try:
        header = json.loads(blob[start : start + n])
    except ValueError:
        raise BackupError("damaged backup header") from None
    data = blob[start + n :]
    if header.get("format") != 1:
        raise BackupError(f"backup format {header.get('format')!r} is not supported")
    if len(data) != header["data_bytes"] or zlib.crc32(data) != header["crc32"]:
        raise BackupError("the backup is truncated or damaged (length or CRC-32 mismatch)")
    return Backup(int(header["index"]), int(header["term"]), header, data)


def _fresh_state(data: bytes) -> bytes:
    """The snapshot's replicated state without the old cluster's peers and client sessions."""
    obj = cbor2.loads(data)
    if not isinstance(obj, list) or len(obj) != 6:
        raise BackupError("the backup does not hold an Aspen state snapshot")
    obj[3] = []  # peers learned by the old cluster (add-learner addresses)
    obj[4] = []  # client sessions (request de-duplication of the old cluster's clients)
    return cbor2.dumps(obj)


def restore_into(backup: Backup, targets: Sequence[tuple[int, Path, str]]) -> None:
    """Write the backup into each target (node id, data dir, storage backend); the ids are
    the new cluster's voters. A data directory that holds anything is refused."""
    from aspen.storage import open_storage

    for _node, path, _backend in targets:
        if path.exists() and any(path.iterdir()):
            raise BackupError(f"{path} is not empty: restore builds a new cluster, into empty "
                              "data directories only")
    data = _fresh_state(backup.data)
    voters = frozenset(node for node, _, _ in targets)
    meta = SnapshotMeta(backup.index, backup.term, Membership(voters=voters))
    for _node, path, backend in targets:
        path.mkdir(parents=True, exist_ok=True)
        store = open_storage(path, backend)  # type: ignore[arg-type]
        try:
            store.save_snapshot(meta, data)
            store.set_hard_state(HardState(term=backup.term, vote=None, commit=backup.index))
        finally:
            store.close()
