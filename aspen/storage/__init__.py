"""Durable Raft log, hard state and snapshots: a memory and an on-disk backend."""
