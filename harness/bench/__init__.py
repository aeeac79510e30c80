"""Benchmarks: scripts that print figures (never pass/fail timing), and their process helpers."""
