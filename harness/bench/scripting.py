"""EVALSHA of a small GET+SET script with redis-benchmark, next to SET, on redis-server, one
Aspen node and three (real daemons, the leader measured). Prints figures; never a test.

    python -m harness.bench.scripting redis 1 3 [-n 20000]
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from harness.daemons import DaemonCluster, free_ports

SCRIPT = "local v = redis.call('get', KEYS[1]) redis.call('set', KEYS[1], ARGV[1]) return v"
SHA = hashlib.sha1(SCRIPT.encode()).hexdigest()
RUNS = (
    ("EVALSHA", 1, ["evalsha", SHA, "1", "key:__rand_int__", "v"]),
    ("EVALSHA", 16, ["evalsha", SHA, "1", "key:__rand_int__", "v"]),
    ("SET", 1, ["set", "key:__rand_int__", "v"]),
    ("SET", 16, ["set", "key:__rand_int__", "v"]),
)


def bench(port: int, label: str, requests: int) -> None:
    redis.Redis(port=port).script_load(SCRIPT)
    for name, pipeline, argv in RUNS:
        out = subprocess.run(
            ["redis-benchmark", "-p", str(port), "-c", "50", "-P", str(pipeline), "-n",
             str(requests), "-r", "1000", "-q", *argv],
            capture_output=True, text=True, check=True).stdout
        line = [s for s in out.replace("\r", "\n").splitlines() if "requests per second" in s][-1]
        rps, _, p50 = line.split(": ", 1)[1].partition(", ")
        print(f"{label:<28} {name:<8} -c 50 -P {pipeline:<3} {rps:<32} {p50}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("targets", nargs="+", help="'redis' or a number of Aspen nodes")
    parser.add_argument("-n", type=int, default=20000, help="requests per run")
    args = parser.parse_args()
    for target in args.targets:
        if target == "redis":
            port = free_ports(1)[0]
            proc = subprocess.Popen(["redis-server", "--port", str(port), "--save", "",
                                     "--appendonly", "no"], stdout=subprocess.DEVNULL)
            try:
                time.sleep(0.5)
                bench(port, "redis-server 7.0.15", args.n)
            finally:
                proc.terminate()
                proc.wait()
            continue
        nodes = int(target)
        with tempfile.TemporaryDirectory() as d, DaemonCluster(nodes, Path(d)) as cluster:
            cluster.start_all()
            leader = cluster.wait_leader()
            bench(cluster.resp_port(leader), f"aspen, {nodes} node(s), leader", args.n)


if __name__ == "__main__":
    main()
