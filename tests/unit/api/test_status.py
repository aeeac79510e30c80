"""`aspen status`'s table (pure formatting of /status documents)."""

from __future__ import annotations

from typing import Any

from aspen.api.status import format_table


def doc(i: int, role: str, leader: int | None, applied: int, last: int) -> dict[str, Any]:
    return {"id": i, "role": role, "term": 3, "leader": leader, "commit_index": applied,
            "applied_index": applied, "last_index": last, "http": f"h:{i}",
            "membership": {"voters": [1, 2, 3], "learners": [4], "joint": False}}


def test_rows_sorted_by_id_with_lag_behind_the_leaders_last_index() -> None:
    nodes = {"10": doc(10, "follower", 2, 90, 90), "2": doc(2, "leader", 2, 100, 100),
             "3": doc(3, "follower", 2, 100, 100)}
    lines = format_table(nodes).splitlines()
    assert lines[0].split() == ["ID", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED", "LAG", "HTTP"]
    rows = [line.split() for line in lines[1:4]]
    assert [r[0] for r in rows] == ["2", "3", "10"]  # numeric order, not text order
    assert {r[0]: r[6] for r in rows} == {"2": "0", "3": "0", "10": "10"}
    assert lines[4] == "voters: [1, 2, 3]  learners: [4]"


def test_without_a_leader_lag_is_unknown_and_it_says_so() -> None:
    nodes = {"1": doc(1, "candidate", None, 5, 7), "2": doc(2, "follower", None, 5, 5)}
    lines = format_table(nodes).splitlines()
    assert [line.split()[6] for line in lines[1:3]] == ["-", "-"]
    assert [line.split()[3] for line in lines[1:3]] == ["-", "-"]
    assert lines[-1] == "no leader among the nodes that answered"
