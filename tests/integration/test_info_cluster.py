"""INFO # Replication on a three-node cluster of real daemons: the leader is the master with
its Raft followers as replicas, each follower a replica of the leader."""

from __future__ import annotations

import pytest

from harness.daemons import DaemonCluster, wait_until

pytestmark = pytest.mark.slow


def test_replication_section_follows_raft(cluster: DaemonCluster) -> None:
    leader = cluster.wait_leader()
    assert cluster.client(leader).set("k", "v")
    follower_ports = {cluster.resp_port(i) for i in cluster.voters if i != leader}

    def leader_sees_followers() -> bool:
        info = cluster.client(leader).info("replication")
        return info["role"] == "master" and info["connected_slaves"] == 2

    wait_until("the leader lists two replicas", leader_sees_followers, timeout=10)
    info = cluster.client(leader).info("replication")
    ports = {info[f"slave{n}"]["port"] for n in range(2)}
    assert ports == follower_ports
    assert all(info[f"slave{n}"]["state"] == "online" for n in range(2))
    for i in cluster.voters:
        if i == leader:
            continue
        info = cluster.client(i).info("replication")
        assert info["role"] == "slave" and info["master_link_status"] == "up"
        assert info["master_port"] == cluster.resp_port(leader)
        assert info["master_repl_offset"] >= 1
    everything = cluster.client(leader).info("everything")
    assert everything["cluster_enabled"] == 0 and everything["arch_bits"] == 64
