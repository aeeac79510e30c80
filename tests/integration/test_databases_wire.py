"""Numbered databases through real clients against a standalone `aspen node` process:
redis-py's `Redis(db=1)` and `redis://host:port/1`, redis-cli's `-n`, CONFIG GET databases,
INFO keyspace and CLIENT LIST's db= (the reference redis-server answers the same)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import redis
from test_differential_wire import ASPEN, aspen_port, free_port, redis_port, running

pytestmark = pytest.mark.slow
__all__ = ["aspen_port", "redis_port"]


def _scenario(port: int) -> list[object]:
    out: list[object] = []
    r0 = redis.Redis(port=port, socket_timeout=10)
    r1 = redis.Redis(port=port, db=1, socket_timeout=10)
    url = redis.from_url(f"redis://127.0.0.1:{port}/2", socket_timeout=10)
    try:
        r0.flushall()
        out.append(r1.set("k", "one"))
        out.append(r0.get("k"))
        out.append(r1.get("k"))
        out.append(url.set("k", "two"))
        out.append((r0.dbsize(), r1.dbsize(), url.dbsize()))
        out.append(r1.move("k", 3))
        out.append(r0.copy("nope", "x", destination_db=5))
        out.append(url.copy("k", "k", destination_db=0))
        out.append(r0.get("k"))
        out.append(r0.swapdb(0, 2))
        out.append(r0.get("k"))
        out.append(sorted(r0.info("keyspace")))
        out.append(r1.client_info()["db"])
        out.append(r0.config_get("databases"))
        with pytest.raises(redis.ResponseError) as exc:
            r0.execute_command("SELECT", "16")
        out.append(str(exc.value))
        pipe = r1.pipeline(transaction=True)
        pipe.set("t", "1").execute_command("SELECT", "4").set("t", "4")
        out.append(pipe.execute())
        out.append(r1.get("t"))  # its own connection is still in db 4 after the transaction
    finally:
        for c in (r0, r1, url):
            c.close()
    return out


def test_redis_py_databases_like_redis(aspen_port: int, redis_port: int) -> None:
    assert _scenario(aspen_port) == _scenario(redis_port)


def test_redis_cli_dash_n(aspen_port: int) -> None:
    cli = shutil.which("redis-cli")
    assert cli is not None

    def run(*args: str) -> str:
        done = subprocess.run([cli, "-p", str(aspen_port), *args], capture_output=True,
                              text=True, timeout=30, check=True)
        return done.stdout.strip()

    assert run("-n", "7", "SET", "cli", "seven") == "OK"
    assert run("-n", "7", "GET", "cli") == "seven"
    assert run("GET", "cli") == ""
    assert "db=7" in run("-n", "7", "CLIENT", "INFO")


def test_configured_databases_and_a_restart(tmp_path: Path) -> None:
    """`databases = 4` in the node's TOML; a key in db 3 survives a restart of the process."""
    port = free_port()
    config = tmp_path / "node.toml"
    config.write_text(f'[node]\nport = {port}\ndir = "data"\ndatabases = 4\n')
    args = [str(ASPEN), "node", "--config", str(config)]
    for round_ in (1, 2):
        with running(args, port):
            r3 = redis.Redis(port=port, db=3, socket_timeout=10)
            try:
                if round_ == 1:
                    assert r3.set("k", "three") is True
                assert r3.get("k") == b"three"
                assert r3.config_get("databases") == {"databases": "4"}
                with pytest.raises(redis.ResponseError, match="DB index is out of range"):
                    r3.execute_command("SELECT", "4")
                assert redis.Redis(port=port, socket_timeout=10).get("k") is None
            finally:
                r3.close()


def _pipelined(port: int) -> list[object]:
    r = redis.Redis(port=port, socket_timeout=10)
    r1 = redis.Redis(port=port, db=1, socket_timeout=10)
    out: list[object] = []
    try:
        r.flushall()
        pipe = r.pipeline(transaction=False)
        for argv in (("MULTI",), ("SELECT", "1"), ("EXEC",), ("SET", "p", "1"), ("GET", "p"),
                     ("SELECT", "0")):
            pipe.execute_command(*argv)
        out.append(pipe.execute())
        out.append((r1.get("p"), r.get("p")))
        pipe = r.pipeline(transaction=False)
        for argv in (("WATCH", "w"), ("SET", "w", "changed"), ("MULTI",), ("SELECT", "1"),
                     ("EXEC",), ("SET", "q", "1")):
            pipe.execute_command(*argv)
        out.append(pipe.execute())
        out.append((r.get("q"), r1.get("q")))
    finally:
        r.close()
        r1.close()
    return out


def test_a_pipeline_after_exec_with_select_runs_in_the_new_database(
    aspen_port: int, redis_port: int
) -> None:
    """MULTI, SELECT 1, EXEC and then SET sent in one write: the SET (handed over while the
    transaction is still being replicated) lands in database 1, as in Redis; after an EXEC
    aborted by WATCH the queued SELECT did not run, so the next SET stays in database 0."""
    ours = _pipelined(aspen_port)
    assert ours[1] == (b"1", None) and ours[3] == (b"1", None)
    assert ours == _pipelined(redis_port)
