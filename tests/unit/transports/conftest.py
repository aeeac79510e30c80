"""Shared fixtures for the transport tests."""

from __future__ import annotations

import pytest

from transports.factory import KINDS


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    """Every conformance test runs once per transport kind."""
    return str(request.param)
