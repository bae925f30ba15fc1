"""Benchmarks of f8a-jobs-worker against the raw limits of its broker and database, measured in one run.

``make bench`` (or ``python -m bench``) runs them all; docs/benchmarks.md holds the latest numbers.
"""
