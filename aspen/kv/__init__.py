"""The replicated state machine: keyspace, command table, TTLs, transactions."""
