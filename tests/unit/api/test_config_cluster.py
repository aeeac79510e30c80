"""aspen.node_config's cluster sections: [raft], [http], [peers], [security] -> ClusterSettings."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import zmq
from hypothesis import given
from hypothesis import strategies as st

# Import the runtime (and the real `transports` package) at collection time: once pytest has
# put tests/unit on sys.path, a lazy `import transports` finds tests/unit/transports instead.
import aspen.cluster  # noqa: F401
from aspen.node_config import (
    Config,
    ConfigError,
    LocalMember,
    Peer,
    load_config,
    parse_config,
    render_local_config,
)

FULL = """
[node]
id = 2
port = 6380
dir = "n2"
[raft]
cluster_id = "prod"
listen = "10.0.0.2:7000"
transport = "websocket"
storage = "lmdb"
tick_ms = 20
election_ticks = 15
heartbeat_ticks = 3
request_timeout = 2.5
read_consistency = "lease"
snapshot_entries = 1000
snapshot_log_bytes = "8mb"
bootstrap = [3, 1, 2]
[http]
listen = "127.0.0.1:8002"
[peers]
1 = "10.0.0.1:7000"
3 = { raft = "10.0.0.3:7000", http = "10.0.0.3:8000", resp = "10.0.0.3:6379" }
[security]
requirepass = "pw"
insecure = true  # a websocket mesh beyond loopback without mutual TLS (test_exposure.py)
"""


def test_a_full_cluster_config_becomes_cluster_settings(tmp_path: Path) -> None:
    path = tmp_path / "n2.toml"
    path.write_text(FULL)
    config = load_config(path)
    s = config.cluster_settings()
    assert (s.node_id, s.cluster_id, s.raft_address) == (2, "prod", "10.0.0.2:7000")
    assert dict(s.peers) == {1: "10.0.0.1:7000", 3: "10.0.0.3:7000"}
    assert s.data_dir == tmp_path / "n2"
    assert (s.transport, s.storage_backend) == ("websocket", "lmdb")
    assert (s.tick_interval, s.election_ticks, s.heartbeat_ticks) == (0.02, 15, 3)
    assert (s.request_timeout, s.read_consistency) == (2.5, "lease")
    assert (s.snapshot_entries, s.snapshot_log_bytes) == (1000, 8 * 1024 * 1024)
    assert s.bootstrap_voters == (1, 2, 3)
    assert config.peers[3] == Peer("10.0.0.3:7000", "10.0.0.3:8000", "10.0.0.3:6379")
    assert config.http.listen == "127.0.0.1:8002"
    assert config.node.requirepass == "pw"  # [security] requirepass lands on the node
    assert not config.standalone


def test_no_config_is_a_standalone_one_node_group() -> None:
    config = Config()
    assert config.standalone
    s = config.cluster_settings()
    assert s.bootstrap_voters == (1,) and dict(s.peers) == {}
    assert s.data_dir == Path("data") and s.storage_backend == "sqlite"
    assert s.read_consistency == "linearizable"


BAD = [
    ("[raft]\ntransport = \"tcp\"", 'raft.transport: must be one of "zmq", "websocket", got "tcp"'),
    ("[raft]\nstorage = \"memory\"", "raft.storage: must be one of"),
    ("[raft]\nlisten = \"7000\"", 'raft.listen: must be "host:port", got "7000"'),
    ("[raft]\nlisten = \"h:99999\"", "raft.listen: must be"),
    ("[raft]\ntick_ms = 0", "raft.tick_ms: must be an integer 1-60000, got 0"),
    ("[raft]\ntick_ms = 1.5", "raft.tick_ms: must be an integer"),
    ("[raft]\nelection_ticks = 1", "raft.election_ticks: must be an integer 2-10000"),
    ("[raft]\nheartbeat_ticks = 10", "raft.heartbeat_ticks: must be smaller than raft.election"),
    ("[raft]\nrequest_timeout = 0", "raft.request_timeout: must be a number > 0, got 0"),
    ("[raft]\nread_consistency = \"strong\"", "raft.read_consistency: must be one of"),
    ("[raft]\nsnapshot_entries = -1", "raft.snapshot_entries: must be an integer"),
    ("[raft]\nsnapshot_log_bytes = \"lots\"", "raft.snapshot_log_bytes: must be a size"),
    ("[raft]\nbootstrap = 3", "raft.bootstrap: must be a list of positive node ids, got 3"),
    ("[raft]\nbootstrap = [1, 1]", "raft.bootstrap: must not repeat a node id"),
    ("[raft]\nbootstrap = [1, 2]", "raft.bootstrap: node 2 is not in [peers]"),
    ("[raft]\nbootstrap = [2]", "raft.bootstrap: lists [2] but not this node (1)"),
    ("[raft]\ncluster_id = \"\"", "raft.cluster_id: must be a non-empty string"),
    ("[raft]\nelection = 3", "raft.election: unknown key (known keys: "),
    ("[http]\nlisten = 8000", 'http.listen: must be "host:port" (or "" to turn it off), got 8000'),
    ("[peers]\nx = \"h:1\"", "peers.x: a peer's key must be its positive node id"),
    ("[peers]\n1 = \"h:1\"", "peers.1: node 1 is this node (node.id); list only others"),
    ("[peers]\n2 = \"nope\"", 'peers.2.raft: must be "host:port", got "nope"'),
    ("[peers]\n2 = 5", 'peers.2: must be "host:port" or a table'),
    ("[peers]\n2 = { http = \"h:1\" }", "peers.2.raft: missing"),
    ("[peers]\n2 = { raft = \"h:1\", grpc = \"h:2\" }", "peers.2.grpc: unknown key"),
    ("[peers]\n2 = { raft = \"h:1\", http = \"h\" }", "peers.2.http: must be"),
    ("peers = 3", "peers: must be a table ([peers]), got 3"),
    ("[node]\nid = 0", "node.id: must be a positive integer, got 0"),
    ("[node]\nid = \"one\"", 'node.id: must be a positive integer, got "one"'),
    ("[security]\ncurve_public_key = \"a.key\"", "security.curve_secret_key: missing"),
    ("[security]\ncurve_secret_key = \"a.key_secret\"", "security.curve_public_key: missing"),
    ("[security]\ncurve_peer_keys = { 2 = \"k\" }", "security.curve_peer_keys: set, but"),
    ("[security]\ncurve_peer_keys = 3", "security.curve_peer_keys: must be a table"),
    ("[security]\nrequirepass = 3", "security.requirepass: must be a string, got 3"),
    ("[node]\nrequirepass = \"a\"\n[security]\nrequirepass = \"b\"",
     "security.requirepass: differs from node.requirepass"),
    ("[raft]\ntransport = \"websocket\"\n[security]\ncurve_public_key = \"a\"\n"
     "curve_secret_key = \"b\"", 'security.curve_public_key: CURVE needs raft.transport = "zmq"'),
    ("[peers]\n2 = \"h:1\"\n[security]\ncurve_public_key = \"a\"\ncurve_secret_key = \"b\"",
     "security.curve_peer_keys: no key for peer 2"),
]


@pytest.mark.parametrize(("toml", "message"), BAD)
def test_bad_configs_are_refused_naming_the_key(toml: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(tomllib.loads(toml))
    assert str(info.value).startswith(message), str(info.value)


def test_curve_keys_load_from_files_relative_to_the_config(tmp_path: Path) -> None:
    pub, sec = zmq.curve_keypair()
    peer_pub, _ = zmq.curve_keypair()
    (tmp_path / "n1.key").write_bytes(b"# public\n" + pub + b"\n")
    (tmp_path / "n1.key_secret").write_bytes(b"# secret\n" + sec + b"\n")
    (tmp_path / "n2.key").write_bytes(peer_pub + b"\n")
    path = tmp_path / "n1.toml"
    path.write_text('[peers]\n2 = "127.0.0.1:7002"\n3 = "127.0.0.1:7003"\n[security]\n'
                    'curve_public_key = "n1.key"\ncurve_secret_key = "n1.key_secret"\n'
                    f'curve_peer_keys = {{ 2 = "n2.key", 3 = "{peer_pub.decode()}" }}\n')
    curve = load_config(path).curve()
    assert (curve.public_key, curve.secret_key) == (pub, sec)
    assert dict(curve.peer_keys) == {2: peer_pub, 3: peer_pub}
    # a public key that is not the secret's half is refused, naming the files
    (tmp_path / "n1.key").write_bytes(peer_pub + b"\n")
    with pytest.raises(ConfigError, match="is not the public half"):
        load_config(path).curve()
    (tmp_path / "n1.key").unlink()
    with pytest.raises(ConfigError, match=r"security: .*n1\.key"):
        load_config(path).curve()


@given(n=st.integers(1, 7), base=st.integers(1024, 40000), data=st.data())
def test_generated_local_configs_load_back(n: int, base: int, data: st.DataObject) -> None:
    members = [LocalMember(i, base + i, base + 100 + i, base + 200 + i) for i in range(1, n + 1)]
    me = data.draw(st.sampled_from(members))
    tick = data.draw(st.integers(1, 1000))
    text = render_local_config(me, members, f"n{me.id}", raft={"tick_ms": tick})
    config = parse_config(tomllib.loads(text))
    assert config.node.id == me.id and config.node.port == me.resp
    assert config.raft.bootstrap == tuple(range(1, n + 1))
    assert config.raft.tick_ms == tick
    assert set(config.peers) == {m.id for m in members} - {me.id}
    s = config.cluster_settings()
    assert s.raft_address == f"127.0.0.1:{me.raft}"
    assert all(s.peers[m.id] == f"127.0.0.1:{m.raft}" for m in members if m.id != me.id)
