"""aspen.node_config: TOML -> frozen settings, with errors that name the key."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from aspen.node_config import Config, ConfigError, NodeSettings, load_config, parse_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(text)
    return path


def test_defaults_match_redis_and_the_readme() -> None:
    node = Config().node
    assert (node.bind, node.port, node.dir) == ("127.0.0.1", 6379, Path("data"))
    assert node.requirepass is None
    assert node.proto_max_bulk_len == 512 * 1024 * 1024
    assert node.max_argv == 2**31 - 1


def test_a_full_file_loads_and_relative_dir_follows_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[node]
bind = "0.0.0.0"
port = 7001
dir = "n1"
requirepass = "s3cret"
max_clients = 50
timeout = 30
proto_max_bulk_len = "64mb"
max_argv = 1000
shutdown_grace = 1.5
client_query_buffer_limit = "2mb"
max_output_buffer = "512kb"
""",
    )
    config = load_config(path)
    assert config.source == path
    assert config.node == NodeSettings(
        bind="0.0.0.0", port=7001, dir=tmp_path / "n1", requirepass="s3cret", max_clients=50,
        timeout=30.0, proto_max_bulk_len=64 * 1024 * 1024, max_argv=1000, shutdown_grace=1.5,
        client_query_buffer_limit=2 * 1024 * 1024, max_output_buffer=512 * 1024,
    )
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        config.node.port = 1  # type: ignore[misc]


PORT = "node.port: must be an integer 1-65535 (or 0: any free port), got "


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[node]\nport = "x"', PORT + '"x"'),
        ("[node]\nport = 70000", PORT + "70000"),
        ("[node]\nport = true", PORT + "true"),
        ("[node]\nprot = 1", "node.prot: unknown key (known keys: "),
        ("[nodes]\nport = 1",
         "nodes: unknown section (known sections: [node], [raft], [http], [security], [tls], "
         "[peers], [redis])"),
        ("[redis]\nhz = \"lots\"",
         "redis.hz: argument couldn't be parsed into an integer, got 'lots'"),
        ("[redis]\nmaxmemory = 5", "redis.maxmemory: set node.maxmemory instead"),
        ("[redis]\nmaxclients = 5", "redis.maxclients: set node.max_clients instead"),
        ("[redis]\nnope = 5", "redis.nope: unknown Redis parameter"),
        ("node = 3", "node: must be a table ([node]), got 3"),
        ('[node]\nbind = ""', 'node.bind: must be a non-empty string, got ""'),
        ("[node]\ntimeout = -1", "node.timeout: must be a number of seconds >= 0, got -1"),
        ("[node]\nmax_clients = 0", "node.max_clients: must be an integer 1-1000000, got 0"),
        ('[node]\nproto_max_bulk_len = "12 parsecs"', "node.proto_max_bulk_len: must be a size"),
        ("[node]\nrequirepass = 5", "node.requirepass: must be a string, got 5"),
        ('[node]\nrequirepass = "a\\nb"', "node.requirepass: must not contain CR, LF or NUL"),
    ],
)
def test_errors_name_the_key_and_the_value(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, toml))
    assert str(info.value).startswith(message)


def test_unreadable_and_malformed_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[node\n"))


def test_memory_units() -> None:
    def bulk(value: object) -> int:
        return parse_config({"node": {"proto_max_bulk_len": value}}).node.proto_max_bulk_len

    assert bulk("1gb") == 1024**3
    assert bulk("100k") == 100_000
    assert bulk("2KB") == 2048
    assert bulk(12345) == 12345
    with pytest.raises(ConfigError):
        bulk(0)


def test_empty_requirepass_means_no_password() -> None:
    assert parse_config({"node": {"requirepass": ""}}).node.requirepass is None


def test_overrides_are_validated_like_the_file() -> None:
    config = Config().with_overrides(port=7000, bind=None, dir="x")
    assert (config.node.port, config.node.bind, config.node.dir) == (7000, "127.0.0.1", Path("x"))
    with pytest.raises(ConfigError, match=r"node\.port: must be an integer"):
        Config().with_overrides(port=-1)


def test_redis_settings_use_redis_names() -> None:
    config = parse_config({"node": {"requirepass": "pw", "max_clients": 7}})
    settings = dict(config.redis_settings())
    assert settings[b"requirepass"] == b"pw"
    assert settings[b"maxclients"] == b"7"
    assert settings[b"proto-max-bulk-len"] == b"536870912"
    assert settings[b"appendonly"] == b"yes"  # the Raft log is fsynced before a reply
    assert Path(settings[b"dir"].decode()).is_absolute()


def test_databases_setting_reaches_the_runtime_and_config_get() -> None:
    assert parse_config({}).cluster_settings().databases == 16
    config = parse_config({"node": {"databases": 4}})
    assert config.cluster_settings().databases == 4
    assert (b"databases", b"4") in config.redis_settings()
    with pytest.raises(ConfigError, match=r"node\.databases"):
        parse_config({"node": {"databases": 0}})
