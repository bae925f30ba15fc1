"""Alembic's environment for the job store: migrations run on the connection (and in the transaction) that
:mod:`f8a_jobs_worker.persistence.schema` hands over, with the version table of its naming."""

from alembic import context

from f8a_jobs_worker.persistence.schema import VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(connection=connection, version_table=VERSION_TABLE, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
