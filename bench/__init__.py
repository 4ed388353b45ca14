"""Benchmarks: `make bench` runs them all and writes figures."""
