"""Simulated market participants for the demo, tests and benchmarks (not part of the core)."""
