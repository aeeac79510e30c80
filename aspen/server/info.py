"""INFO's sections for a node: every section and field Redis 7.0.15 reports, with the nearest
meaning Aspen has (docs/compatibility.md, "INFO").

Facts Aspen has no counterpart for keep Redis's idle value (0, "ok", -1), so clients that read
a field find it; the ones with a near meaning map to the Raft runtime:

- `# Persistence`: `aof_enabled:1` (every write is in the fsynced Raft log before its reply);
  `aof_rewrites`/`rdb_saves` count the snapshots this node took (a snapshot compacts the log),
  `rdb_changes_since_last_save` the entries applied since the last one.
- `# Replication`: the leader is `role:master` with its Raft followers as `slaveN` (offset: the
  follower's match index); a follower is `role:slave` of the leader
  (`master_link_status:up` while it knows one). Offsets are Raft log indexes.
- `# Memory`: `used_memory` is the process's resident size (Python has no separate count of
  what the dataset uses); `mem_allocator:pymalloc`.

Which sections a given `INFO` shows, and their order, is decided by the session
(`aspen.kv.session.render_info`).
"""

from __future__ import annotations

import os
import platform
import secrets
import sys
import time
from typing import Any

from aspen import _native

__all__ = ["node_sections"]

_RUN_ID = secrets.token_hex(20)


def _human(n: float) -> str:
    """Redis's bytesToHuman: 1.09M, 32.00K, 200B."""
    for unit, size in (("P", 1024**5), ("T", 1024**4), ("G", 1024**3), ("M", 1024**2),
                       ("K", 1024)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return f"{int(n)}B"


def _total_memory() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError):
        return 0


def _pairs(**fields: object) -> list[tuple[str, str]]:
    return [(k, str(v)) for k, v in fields.items()]


def node_sections(node: Any, rss: int, peak: int) -> dict[str, list[tuple[str, str]]]:
    """Every section but `keyspace` (the session adds it) for `node` (an aspen.daemon.Node)."""
    now = time.time()
    uptime = int(node._clock() - node.started_at)
    cfg = node.server_config
    server = node.server
    cluster = node.cluster
    status: dict[str, Any] = cluster.status() if cluster.core is not None else {}
    uname = os.uname()
    compiler = platform.python_compiler().split()
    hz = cfg["hz"]
    maxmemory = int(cfg["maxmemory"])
    stats = node.command_stats
    sections: dict[str, list[tuple[str, str]]] = {}
    sections["server"] = _pairs(
        redis_version=node.compat_version,
        redis_git_sha1="00000000",
        redis_git_dirty=0,
        redis_build_id=node.build_id,
        redis_mode="standalone",
        os=f"{uname.sysname} {uname.release} {uname.machine}",
        arch_bits=64 if sys.maxsize > 2**32 else 32,
        monotonic_clock="POSIX clock_gettime",
        multiplexing_api="epoll" if sys.platform == "linux" else "kqueue",
        atomicvar_api="python",
        gcc_version=compiler[1] if len(compiler) > 1 else "0.0.0",
        process_id=os.getpid(),
        process_supervised="no",
        run_id=_RUN_ID,
        tcp_port=node.ports[0] if node.ports else node.config.node.port,
        server_time_usec=int(now * 1e6),
        uptime_in_seconds=uptime,
        uptime_in_days=uptime // 86400,
        hz=hz,
        configured_hz=hz,
        lru_clock=int(now) & (2**24 - 1),
        executable=sys.argv[0],
        config_file=str(node.config.source.resolve()) if node.config.source else "",
        io_threads_active=0,
        aspen_version=node.aspen_version,
        aspen_server="aspen",
        aspen_build=_native.MODE,
    )
    sections["clients"] = _pairs(
        connected_clients=len(server.connections),
        cluster_connections=0,
        maxclients=server.options.max_clients,
        client_recent_max_input_buffer=0,
        client_recent_max_output_buffer=0,
        blocked_clients=cluster.blocking.blocked_clients,
        tracking_clients=0,
        clients_in_timeout_table=cluster.blocking.blocked_clients,
    )
    total = _total_memory()
    dataset = max(rss - node.startup_rss, 0)
    scripting = getattr(cluster.keyspace, "scripting", None)
    sections["memory"] = _pairs(
        used_memory=rss, used_memory_human=_human(rss),
        used_memory_rss=rss, used_memory_rss_human=_human(rss),
        used_memory_peak=peak, used_memory_peak_human=_human(peak),
        used_memory_peak_perc=f"{100.0 * rss / peak if peak else 100.0:.2f}%",
        used_memory_overhead=node.startup_rss, used_memory_startup=node.startup_rss,
        used_memory_dataset=dataset,
        used_memory_dataset_perc=f"{100.0 * dataset / rss if rss else 0:.2f}%",
        allocator_allocated=rss, allocator_active=rss, allocator_resident=rss,
        total_system_memory=total, total_system_memory_human=_human(total),
        used_memory_lua=0, used_memory_vm_eval=0, used_memory_lua_human="0B",
        used_memory_scripts_eval=0,
        number_of_cached_scripts=len(getattr(scripting, "scripts", ()) or ()),
        number_of_functions=0, number_of_libraries=len(getattr(scripting, "libraries", ()) or ()),
        used_memory_vm_functions=0, used_memory_vm_total=0, used_memory_vm_total_human="0B",
        used_memory_functions=0, used_memory_scripts=0, used_memory_scripts_human="0B",
        maxmemory=maxmemory, maxmemory_human=_human(maxmemory),
        maxmemory_policy=cfg["maxmemory-policy"],
        allocator_frag_ratio="1.00", allocator_frag_bytes=0,
        allocator_rss_ratio="1.00", allocator_rss_bytes=0,
        rss_overhead_ratio="1.00", rss_overhead_bytes=0,
        mem_fragmentation_ratio="1.00", mem_fragmentation_bytes=0,
        mem_not_counted_for_evict=0, mem_replication_backlog=0,
        mem_total_replication_buffers=0, mem_clients_slaves=0, mem_clients_normal=0,
        mem_cluster_links=0, mem_aof_buffer=0, mem_allocator="pymalloc",
        active_defrag_running=0, lazyfree_pending_objects=0, lazyfreed_objects=0,
    )
    applied = int(status.get("applied_index", 0) or 0)
    snap = int(status.get("snapshot_index", 0) or 0)
    snapshots = cluster.stats.snapshots_taken
    sections["persistence"] = _pairs(
        loading=0, async_loading=0, current_cow_peak=0, current_cow_size=0,
        current_cow_size_age=0, current_fork_perc="0.00", current_save_keys_processed=0,
        current_save_keys_total=0, rdb_changes_since_last_save=max(applied - snap, 0),
        rdb_bgsave_in_progress=0, rdb_last_save_time=int(node.started_at),
        rdb_last_bgsave_status="ok", rdb_last_bgsave_time_sec=-1,
        rdb_current_bgsave_time_sec=-1, rdb_saves=snapshots, rdb_last_cow_size=0,
        rdb_last_load_keys_expired=0, rdb_last_load_keys_loaded=0,
        aof_enabled=1, aof_rewrite_in_progress=0, aof_rewrite_scheduled=0,
        aof_last_rewrite_time_sec=-1, aof_current_rewrite_time_sec=-1,
        aof_last_bgrewrite_status="ok", aof_rewrites=snapshots,
        aof_rewrites_consecutive_failures=0, aof_last_write_status="ok",
        aof_last_cow_size=0, module_fork_in_progress=0, module_fork_last_cow_size=0,
        aof_current_size=0, aof_base_size=0, aof_pending_rewrite=0, aof_buffer_length=0,
        aof_pending_bio_fsync=0, aof_delayed_fsync=0,
    )
    memory_info = getattr(node, "_memory_info", None)  # the maxmemory estimate, if kept
    if memory_info is not None:
        memory = dict(sections["memory"])
        memory.update(memory_info())
        sections["memory"] = list(memory.items())
    saver = getattr(node, "saver", None)  # SAVE/BGSAVE (aspen.rdb.save): its rdb_* facts
    if saver is not None:
        persistence = dict(sections["persistence"])
        persistence.update(saver.info_fields())
        sections["persistence"] = list(persistence.items())
    pubsub = node.pubsub
    sections["stats"] = _pairs(
        total_connections_received=server.stats_connections_received,
        total_commands_processed=server.stats_commands_processed,
        instantaneous_ops_per_sec=0,
        total_net_input_bytes=0, total_net_output_bytes=0,
        total_net_repl_input_bytes=0, total_net_repl_output_bytes=0,
        instantaneous_input_kbps="0.00", instantaneous_output_kbps="0.00",
        instantaneous_input_repl_kbps="0.00", instantaneous_output_repl_kbps="0.00",
        rejected_connections=server.stats_rejected_connections,
        sync_full=0, sync_partial_ok=0, sync_partial_err=0,
        expired_keys=0, expired_stale_perc="0.00", expired_time_cap_reached_count=0,
        expire_cycle_cpu_milliseconds=0,
        evicted_keys=getattr(cluster.keyspace, "evicted_keys", 0), evicted_clients=0,
        total_eviction_exceeded_time=0, current_eviction_exceeded_time=0,
        keyspace_hits=0, keyspace_misses=0,
        pubsub_channels=len(pubsub.channels), pubsub_patterns=len(pubsub.patterns),
        pubsubshard_channels=len(getattr(pubsub, "shard_channels", ()) or ()),
        latest_fork_usec=0, total_forks=0, migrate_cached_sockets=0,
        slave_expires_tracked_keys=0, active_defrag_hits=0, active_defrag_misses=0,
        active_defrag_key_hits=0, active_defrag_key_misses=0, total_active_defrag_time=0,
        current_active_defrag_time=0, tracking_total_keys=0, tracking_total_items=0,
        tracking_total_prefixes=0, unexpected_error_replies=0,
        total_error_replies=stats.total_errors, dump_payload_sanitizations=0,
        total_reads_processed=server.stats_reads, total_writes_processed=server.stats_writes,
        io_threaded_reads_processed=0, io_threaded_writes_processed=0,
        reply_buffer_shrinks=0, reply_buffer_expands=0,
    )
    sections["replication"] = _replication(node, status, cfg)
    cpu = os.times()
    sections["cpu"] = _pairs(
        used_cpu_sys=f"{cpu.system:.6f}", used_cpu_user=f"{cpu.user:.6f}",
        used_cpu_sys_children=f"{cpu.children_system:.6f}",
        used_cpu_user_children=f"{cpu.children_user:.6f}",
        used_cpu_sys_main_thread=f"{cpu.system:.6f}",
        used_cpu_user_main_thread=f"{cpu.user:.6f}",
    )
    sections["modules"] = []
    sections["commandstats"] = stats.commandstats()
    sections["errorstats"] = stats.errorstats()
    sections["latencystats"] = stats.latencystats()
    sections["cluster"] = [("cluster_enabled", "0")]
    sections["raft"] = cluster.info_fields() if cluster.core is not None else []
    return sections


def _replication(node: Any, status: dict[str, Any], cfg: Any) -> list[tuple[str, str]]:
    cluster = node.cluster
    commit = int(status.get("commit_index", 0) or 0)
    applied = int(status.get("applied_index", 0) or 0)
    last = int(status.get("last_index", 0) or 0)
    first = int(status.get("snapshot_index", 0) or 0) + 1
    replid = node.replication_id
    common = _pairs(
        master_failover_state="no-failover", master_replid=replid,
        master_replid2="0" * 40, master_repl_offset=commit, second_repl_offset=-1,
        repl_backlog_active=1, repl_backlog_size=cfg["repl-backlog-size"],
        repl_backlog_first_byte_offset=first, repl_backlog_histlen=max(last - first + 1, 0),
    )
    if status.get("role") == "leader" or cluster.core is None:
        out = _pairs(role="master")
        followers = [(peer, match) for peer, match in status.get("match_index", {}).items()]
        out.append(("connected_slaves", str(len(followers))))
        for i, (peer, match) in enumerate(followers):
            host, port = node.peer_resp(peer)
            state = "online" if match is not None else "wait_bgsave"
            out.append((f"slave{i}", f"ip={host},port={port},state={state},"
                                     f"offset={match or 0},lag=0"))
        return out + common
    leader = status.get("leader")
    host, port = node.peer_resp(leader) if leader else ("", 0)
    out = _pairs(
        role="slave", master_host=host, master_port=port,
        master_link_status="up" if leader else "down",
        master_last_io_seconds_ago=0 if leader else -1, master_sync_in_progress=0,
        slave_read_repl_offset=applied, slave_repl_offset=applied,
        slave_priority=cfg["replica-priority"], slave_read_only=0, replica_announced=1,
        connected_slaves=0,
    )
    if not leader:
        out.append(("master_link_down_since_seconds", "-1"))
    return out + common
