"""The tables of release 0.1.0, the first with schema versions.

On an empty database this creates every table, index and counting trigger. On a store that an earlier release
wrote (none of them kept a version), it adds only what is missing: tables, the two columns that came late
(``f8a_outbox.replica``, ``f8a_jobs.broken``) and the triggers, whose counters then start from the rows there.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from f8a_jobs_worker.persistence import counts

revision = "0001"
down_revision = None

#: columns added by releases before 0.1.0 to tables that existed already: (table, column, SQL type)
LATE_COLUMNS = (("f8a_outbox", "replica", "VARCHAR(128)"), ("f8a_jobs", "broken", "TEXT"))


def tables() -> sa.MetaData:
    """The tables as 0.1.0 has them (kept here as they were, whatever later revisions change)."""
    metadata = sa.MetaData()
    _jobs_and_history(metadata)
    _scheduler_and_outbox(metadata)
    _runs_in_progress(metadata)
    return metadata


#: an autoincrementing id (SQLite's autoincrement needs INTEGER)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _jobs_and_history(metadata: sa.MetaData) -> None:
    """The jobs, their runs' history and their failures."""
    sa.Table(
        "f8a_jobs",
        metadata,
        sa.Column("id", sa.Unicode(191), primary_key=True),
        sa.Column("next_run_time", sa.Float(25), index=True),
        sa.Column("job_state", sa.LargeBinary, nullable=False),
        sa.Column("handler", sa.Unicode(191), nullable=False),
        sa.Column("is_default", sa.Boolean, nullable=False, default=False),
        sa.Column("broken", sa.Text, nullable=True),
    )
    sa.Table(
        "f8a_job_runs",
        metadata,
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(191), nullable=False),
        sa.Column("handler", sa.String(191), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True)),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_s", sa.Float),
        sa.Column("summary", sa.JSON),
        sa.Column("error", sa.Text),
        sa.Column("failure_id", sa.String(36)),
        sa.Index("ix_f8a_job_runs_job_id", "job_id", "id"),
        sa.Index("ix_f8a_job_runs_finished_at", "finished_at"),
    )
    sa.Table(
        "f8a_job_failures",
        metadata,
        sa.Column("failure_id", sa.String(36), primary_key=True),
        sa.Column("failed_job_id", sa.String(191), nullable=False),
        sa.Column("handler", sa.String(191), nullable=False),
        sa.Column("kwargs", sa.JSON),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("traceback", sa.Text),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Index("ix_f8a_job_failures_failed_at", "failed_at"),
    )


def _scheduler_and_outbox(metadata: sa.MetaData) -> None:
    """The scheduler's own state and the outbox of replies and events."""
    sa.Table(
        "f8a_scheduler_state",
        metadata,
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(255), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    pending = sa.text("published_at IS NULL")
    sa.Table(
        "f8a_outbox",
        metadata,
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(36), nullable=False),
        sa.Column("command_id", sa.String(128)),
        sa.Column("reply_to", sa.String(255)),
        sa.Column("correlation_id", sa.String(255)),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.Column("replica", sa.String(128)),
        sa.Index("ux_f8a_outbox_command_id", "command_id", unique=True),
        sa.Index("ix_f8a_outbox_pending", "id", postgresql_where=pending, sqlite_where=pending),
        sa.Index("ix_f8a_outbox_created_at", "created_at"),
    )


def _runs_in_progress(metadata: sa.MetaData) -> None:
    """Runs on their way: failure streaks, buffered runs, backfills, the ledger, the replicas, counters."""
    sa.Table(
        "f8a_failure_streaks",
        metadata,
        sa.Column("job_id", sa.String(191), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
    )
    sa.Table(
        "f8a_buffered_runs",
        metadata,
        sa.Column("job_id", sa.String(191), primary_key=True),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False),
    )
    sa.Table(
        "f8a_backfills",
        metadata,
        sa.Column("backfill_id", sa.String(36), primary_key=True),
        sa.Column("job_id", sa.String(191), nullable=False),
        sa.Column("concurrency", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    sa.Table(
        "f8a_backfill_runs",
        metadata,
        sa.Column("backfill_id", sa.String(36), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.String(36)),
    )
    sa.Table(
        "f8a_run_ledger",
        metadata,
        sa.Column("run_id", sa.String(36), primary_key=True),
        sa.Column("job_id", sa.String(191), nullable=False),
        sa.Column("handler", sa.String(191), nullable=False),
        sa.Column("kwargs", sa.JSON, nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("on_interrupt", sa.String(16), nullable=False),
        sa.Column("worker", sa.String(128), nullable=False),
        sa.Index("ix_f8a_run_ledger_job_id", "job_id"),
    )
    sa.Table(
        "f8a_replicas",
        metadata,
        sa.Column("replica_id", sa.String(128), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
    )
    sa.Table(
        "f8a_counts",
        metadata,
        sa.Column("counter", sa.String(32), primary_key=True),
        sa.Column("shard", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("n", sa.BigInteger, nullable=False),
    )


def upgrade() -> None:
    connection = op.get_bind()
    metadata = tables()
    metadata.create_all(connection, checkfirst=True)
    inspector = sa.inspect(connection)
    for table, column, sql_type in LATE_COLUMNS:
        if column not in {c["name"] for c in inspector.get_columns(table)}:
            op.execute(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}")
    counts.install(connection, metadata.tables["f8a_jobs"])


def downgrade() -> None:
    """Back to no schema at all: every table of 0.1.0 dropped, with the triggers and what they counted."""
    connection = op.get_bind()
    counts.uninstall(connection, ["f8a_jobs", "f8a_job_failures"])
    tables().drop_all(connection, checkfirst=True)
