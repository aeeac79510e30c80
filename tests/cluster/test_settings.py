"""ClusterSettings refuses bad values with a message naming the setting."""

from __future__ import annotations

import pytest

from aspen.cluster import ClusterSettings


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"node_id": 0}, "node_id"),
        ({"peers": {1: "127.0.0.1:1"}}, "own peer"),
        ({"tick_interval": 0}, "tick_interval"),
        ({"read_consistency": "eventual"}, "read_consistency"),
        ({"heartbeat_ticks": 10, "election_ticks": 10}, "heartbeat_ticks"),
        ({"lease_ratio": 1.0}, "lease_ratio"),
        ({"snapshot_entries": -1}, "snapshot_entries"),
    ],
)
def test_bad_settings_are_refused(changes: dict[str, object], words: str) -> None:
    fields: dict[str, object] = {"node_id": 1, **changes}
    with pytest.raises(ValueError, match=words):
        ClusterSettings(**fields)  # type: ignore[arg-type]


def test_lease_is_shorter_than_the_election_timeout() -> None:
    s = ClusterSettings(node_id=1, tick_interval=0.1, election_ticks=10)
    assert 0 < s.lease_duration < s.election_timeout
    assert s.storage_backend == "memory"  # no data dir: nothing on disk
