"""Fixtures: a live node per test worker (see tests/live_node.py)."""

from __future__ import annotations

import pytest

from live_node import Live


@pytest.fixture(scope="session")
def live(tmp_path_factory):
    node = Live(tmp_path_factory.mktemp("live"))
    yield node
    node.stop()


@pytest.fixture(scope="session")
def tight(tmp_path_factory):
    """A node with a tiny rate limit (burst 3, 1/s) and a tiny stream ring (8 messages)."""
    node = Live(tmp_path_factory.mktemp("tight"), rate=1.0, burst=3, ws_ring=8)
    yield node
    node.stop()
