"""Server-level commands and settings that are per node, not replicated: CONFIG's parameter
table (`params`), the node's run-time parameter values (`config`)."""
