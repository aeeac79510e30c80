"""Deterministic simulator, in-process and multi-process clusters, checkers, benchmarks."""
