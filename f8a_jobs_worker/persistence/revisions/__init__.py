"""The job store's schema versions: Alembic's environment (env.py) and one revision per change to the tables
(versions/). Applied by :mod:`f8a_jobs_worker.persistence.schema`."""
