"""Benchmarks: one script per target in TARGETS.md, each with a same-run baseline."""
