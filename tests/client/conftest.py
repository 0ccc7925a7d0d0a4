"""Fixtures: a live node per test worker (defined in tests/live_node.py)."""

from live_node import live, tight  # noqa: F401  (pytest finds fixtures by name)
