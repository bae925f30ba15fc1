"""The ``f8a-jobs-worker`` command line."""
