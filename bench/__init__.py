"""Benchmarks: `make bench` runs them all and writes docs/benchmarks.md.

Every figure is measured beside its ceiling in the same run, on this machine, so the ratio means something.
"""
