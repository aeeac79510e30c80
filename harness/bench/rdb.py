"""RDB import/export and backup/restore figures (docs/benchmarks.md).

    python -m harness.bench.rdb [--keys 1000000]

redis-server makes the data (DEBUG POPULATE: string keys "key:N" -> "value:N", plus a tenth as
many hashes, lists, sets and sorted sets of 20 elements each) and SAVEs it. Then, on one
standalone `aspen node` (a one-node Raft group, its log fsynced):
- import: `aspen import dump.rdb` (keys/s; the peak RSS of the import process and the node's);
- export: SAVE and BGSAVE on the node (keys/s, the node's peak RSS), the file loaded back into
  redis-server to check the key count;
- backup: `aspen backup` (time, size) and `aspen restore` into a fresh data dir (time).
Figures only, never pass/fail.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from harness.bench.servers import free_port, redis_server, wait_for_port


def hwm_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _aspen(*args: str) -> tuple[float, str]:
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "aspen.cli", *args], capture_output=True,
                          text=True)
    if done.returncode:
        raise RuntimeError(f"aspen {args[0]} failed: {done.stderr}")
    return time.monotonic() - t0, done.stdout.strip()


def make_source(directory: Path, n: int) -> int:
    with redis_server("--dir", str(directory), "--dbfilename", "src.rdb",
                      "--enable-debug-command", "yes") as srv:
        r = redis.Redis(port=srv.port, socket_timeout=3600)
        r.execute_command("DEBUG", "POPULATE", n)  # type: ignore[no-untyped-call]
        pipe = r.pipeline(transaction=False)
        for i in range(n // 10):
            members = [f"m{j}" for j in range(20)]
            pipe.hset(f"hash:{i}", mapping={m: "x" for m in members})
            pipe.rpush(f"list:{i}", *members)
            pipe.sadd(f"set:{i}", *members)
            pipe.zadd(f"zset:{i}", {m: j for j, m in enumerate(members)})
            if i % 1000 == 999:
                pipe.execute()
        pipe.execute()
        r.save()
        return int(r.dbsize())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--keys", type=int, default=1_000_000, help="string keys (DEBUG POPULATE)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="aspen-bench-rdb-") as tmp:
        root = Path(tmp)
        total = make_source(root, args.keys)
        src = root / "src.rdb"
        print(f"source: {total} keys, RDB file {src.stat().st_size / 1e6:.1f} MB")
        port, http = free_port(), free_port()
        (root / "node.toml").write_text(
            f'[node]\nport = {port}\ndir = "{root / "data"}"\n'
            f'[http]\nlisten = "127.0.0.1:{http}"\n')
        log = (root / "node.log").open("wb")
        node = subprocess.Popen([sys.executable, "-m", "aspen.cli", "node", "--config",
                                 str(root / "node.toml")], stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_port(port, node)
            client = redis.Redis(port=port, socket_timeout=3600)
            base = rss_kb(node.pid)
            secs, out = _aspen("import", str(src), "--to", f"127.0.0.1:{port}", "--quiet",
                               "--batch", "1000")
            child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            print(f"import: {total / secs:,.0f} keys/s ({secs:.1f} s); peak RSS: import "
                  f"process {child_peak / 1024:.0f} MB, node {hwm_kb(node.pid) / 1024:.0f} MB "
                  f"(idle before: {base / 1024:.0f} MB)")
            print(f"        {out}")
            assert client.dbsize() == total
            loaded = rss_kb(node.pid)
            for cmd in ("SAVE", "BGSAVE"):
                t0 = time.monotonic()
                client.execute_command(cmd)  # type: ignore[no-untyped-call]
                while client.info("persistence")["rdb_bgsave_in_progress"]:
                    time.sleep(0.05)
                secs = time.monotonic() - t0
                print(f"{cmd}: {total / secs:,.0f} keys/s ({secs:.1f} s); node peak RSS "
                      f"{hwm_kb(node.pid) / 1024:.0f} MB (holding the data: "
                      f"{loaded / 1024:.0f} MB)")
            dump = root / "data" / "dump.rdb"
            with redis_server("--dir", str(root / "data"), "--dbfilename", "dump.rdb") as check:
                t0 = time.monotonic()
                while True:
                    try:
                        loaded_keys = redis.Redis(port=check.port).dbsize()
                        break
                    except redis.BusyLoadingError:
                        time.sleep(0.1)
                assert loaded_keys == total, f"redis-server loaded {loaded_keys} keys"
                print(f"        redis-server loaded it in {time.monotonic() - t0:.1f} s")
            print(f"        dump.rdb {dump.stat().st_size / 1e6:.1f} MB, loaded by "
                  f"redis-server: {total} keys")
            backup = root / "cluster.backup"
            secs, out = _aspen("backup", str(backup), "--http", f"127.0.0.1:{http}")
            print(f"backup: {secs:.1f} s, {backup.stat().st_size / 1e6:.1f} MB ({out})")
            (root / "new.toml").write_text(f'[node]\ndir = "{root / "new"}"\n')
            secs, _ = _aspen("restore", str(backup), "--config", str(root / "new.toml"))
            print(f"restore: {secs:.1f} s (writing the data dir; the node then loads it at start)")
        finally:
            node.terminate()
            node.wait(30)
            log.close()


if __name__ == "__main__":
    main()
