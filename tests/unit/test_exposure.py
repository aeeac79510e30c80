"""Safe by default: a config that exposes a node beyond loopback unprotected does not load,
and the error names the fix (issue 18 item 3)."""

from __future__ import annotations

from typing import Any

import pytest

from aspen.exposure import is_loopback
from aspen.node_config import ConfigError, parse_config

PEERS = {"2": "10.0.0.2:7002", "3": "10.0.0.3:7003"}


def config(**sections: Any) -> Any:
    return parse_config(sections)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.3.4.5", "::1", "[::1]", "localhost"])
def test_loopback_addresses(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.1", "192.168.1.2", "db.example"])
def test_other_addresses_are_exposed(host: str) -> None:
    assert not is_loopback(host)


def test_the_defaults_stay_on_loopback_and_load() -> None:
    assert parse_config({}).security.insecure is False


def test_a_public_client_port_needs_a_password() -> None:
    with pytest.raises(ConfigError) as err:
        config(node={"bind": "0.0.0.0"})
    assert "node.bind" in str(err.value) and "security.requirepass" in str(err.value)
    assert "security.insecure = true" in str(err.value)
    assert config(node={"bind": "0.0.0.0", "requirepass": "pw"}).node.requirepass == "pw"
    assert config(node={"bind": "0.0.0.0"}, security={"insecure": True}).node.bind == "0.0.0.0"


def test_a_public_control_plane_needs_a_password() -> None:
    with pytest.raises(ConfigError, match=r"http\.listen .* security\.requirepass"):
        config(http={"listen": "0.0.0.0:8001"})
    config(http={"listen": "0.0.0.0:8001"}, security={"requirepass": "pw"})


def test_a_public_raft_port_needs_curve_keys(tmp_path: Any) -> None:
    raft = {"listen": "0.0.0.0:7001", "bootstrap": [1, 2, 3]}
    with pytest.raises(ConfigError) as err:
        config(raft=raft, peers=PEERS)
    assert "raft.listen" in str(err.value) and "aspen keygen --cluster" in str(err.value)
    config(raft=raft, peers=PEERS, security={"insecure": True})
    keys = {"curve_public_key": "n1.key", "curve_secret_key": "n1.key_secret",
            "curve_peer_keys": {"2": "a" * 40, "3": "b" * 40}}
    assert config(raft=raft, peers=PEERS, security=keys).security.curve_public_key is not None


def test_a_public_websocket_mesh_needs_mutual_tls() -> None:
    raft = {"listen": "0.0.0.0:7001", "transport": "websocket", "bootstrap": [1, 2, 3]}
    with pytest.raises(ConfigError, match=r"tls\.peers = true"):
        config(raft=raft, peers=PEERS)
    tls = {"peers": True, "cert_file": "n.crt", "key_file": "n.key", "ca_cert_file": "ca.crt"}
    assert config(raft=raft, peers=PEERS, tls=tls).tls.peers


def test_a_standalone_node_may_listen_for_raft_anywhere() -> None:
    config(raft={"listen": "0.0.0.0:7001"})


@pytest.mark.parametrize(
    ("tls", "message"),
    [
        ({"port": 6390}, r"tls\.cert_file: missing"),
        ({"port": 6390, "cert_file": "c", "key_file": "k"}, r"tls\.ca_cert_file: missing"),
        ({"peers": True, "cert_file": "c", "key_file": "k", "ca_cert_file": "a"},
         r'tls\.peers: TLS between peers is for raft\.transport = "websocket"'),
        ({"auth_clients": "maybe"}, r"tls\.auth_clients: must be one of"),
    ],
)
def test_tls_settings_are_checked(tls: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config(tls=tls)


def test_tls_without_client_certificates_needs_no_ca() -> None:
    tls = config(tls={"port": 6390, "cert_file": "c", "key_file": "k", "auth_clients": "no"}).tls
    assert tls.enabled and tls.ca_cert_file is None
