"""A small Selinon application of the tests' own: flows whose tasks record what they received in PostgreSQL.

Its Celery worker is started by the tests as a separate ``celery worker`` process (tests/test_selinon.py).
"""
