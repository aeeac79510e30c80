"""harness.netns says why network namespaces cannot be used (the partition tests skip with it,
`python -m harness.faults` exits 2 with it) instead of failing half-way."""

from __future__ import annotations

import os
import shutil
import sys

import pytest

from harness import faults, netns


def test_not_root_not_linux_no_ip_each_have_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert "need Linux" in (netns.unavailable_reason() or "")
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert "iproute2" in (netns.unavailable_reason() or "")
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/sbin/ip")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "needs root" in (netns.unavailable_reason() or "")
    with pytest.raises(netns.NetnsUnavailable, match="needs root"):
        netns.Network(3).open()


def test_the_campaign_command_exits_2_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(faults, "unavailable_reason", lambda: "creating namespaces needs root")
    assert faults.main(["--minutes", "1"]) == 2
    assert "cannot run: creating namespaces needs root" in capsys.readouterr().err
