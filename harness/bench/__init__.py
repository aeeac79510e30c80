"""Benchmarks: scripts that print figures (never pass/fail timing), and their process helpers.

`python -m harness.bench` (cli.py) is the side-by-side benchmark of issue 7; its pieces:
procs.py (process groups, /proc CPU and RSS), targets.py (the systems under test),
syncobj_front.py (PySyncObj behind RESP), rb.py (redis-benchmark runs and parsing),
loadgen.py (mixed asyncio load), cluster_phases.py (failover, memory, restart, catch-up),
stats.py (percentiles), report.py (targets, Markdown, the docs section), progress.py.
servers.py and resp_codec.py serve the older single-node benchmarks.
"""
