"""Persistence: the APScheduler job store and the worker's own tables (run history, failures, state)."""
