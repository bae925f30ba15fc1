"""The job store's tables, as the latest schema version has them (persistence/revisions/ has the versions).

``f8a_jobs``: one row per job: its state (``job_state``, the pickled dict of APScheduler 3's ``Job.__getstate__``,
version 1, so that stores and replicas of earlier releases read it), its next run time (UTC epoch seconds;
null: paused), its handler and whether it came from ``default_jobs/`` (for listing without unpickling), and
why it is broken (its state cannot be restored), if it is.
``f8a_job_runs``: one row per run outcome (executed, failed, missed), pruned by age and count per job.
``f8a_job_failures``: one row per failed run with its traceback, kept until ``jobs.clean_failed``.
``f8a_scheduler_state``: whole-scheduler settings that must survive restarts (paused or running).
``f8a_outbox``: every event and every reply, written in the transaction of the change that caused it and sent
by the relay; a reply's row (by ``command_id``) is also its stored copy for idempotency.
``f8a_run_ledger``: the runs that started and have not finished, by replica; what a replica that is gone left
there was interrupted.
``f8a_replicas``: the workers sharing this store, with their last heartbeat.
``f8a_counts``: how many jobs of each type and failure records there are, kept by triggers (``counts.py``).
``f8a_audit``: every write and every refusal, with the principal behind it (``audit.py``), kept for its own
retention.
``f8a_signatures_seen``: the signatures of signed commands applied within the replay window (``signatures.py``).
``f8a_last_runs``: each job's last run that ran, for listing the failing jobs (``last_runs.py``).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

jobs = sa.Table(
    "f8a_jobs",
    metadata,
    sa.Column("id", sa.Unicode(191), primary_key=True),
    sa.Column("next_run_time", sa.Float(25), index=True),
    sa.Column("job_state", sa.LargeBinary, nullable=False),
    sa.Column("handler", sa.Unicode(191), nullable=False),
    sa.Column("is_default", sa.Boolean, nullable=False, default=False),
    sa.Column("broken", sa.Text, nullable=True),
    sa.Index("ix_f8a_jobs_handler", "handler", "id"),
    # job.list's paused jobs (on PostgreSQL revision 0004 also indexes id COLLATE "C", where a job id
    # prefix is one range: SQLite has no such collation)
    sa.Index(
        "ix_f8a_jobs_paused",
        "id",
        postgresql_where=sa.text("next_run_time IS NULL"),
        sqlite_where=sa.text("next_run_time IS NULL"),
    ),
    # jobs marked broken: looked for at every start and by job.list's state filter (revision 0005)
    sa.Index(
        "ix_f8a_jobs_broken",
        "id",
        postgresql_where=sa.text("broken IS NOT NULL"),
        sqlite_where=sa.text("broken IS NOT NULL"),
    ),
)

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

job_runs = sa.Table(
    "f8a_job_runs",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
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
    sa.Column("started_by", sa.JSON),  # who started it (run_now, backfill); null: the schedule
    sa.Index("ix_f8a_job_runs_job_id", "job_id", "id"),
    sa.Index("ix_f8a_job_runs_finished_at", "finished_at"),
)

job_failures = sa.Table(
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

scheduler_state = sa.Table(
    "f8a_scheduler_state",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(255), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

outbox = sa.Table(
    "f8a_outbox",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),  # event | reply
    sa.Column("name", sa.String(64), nullable=False),  # the event's name; the command of a reply
    sa.Column("message_id", sa.String(36), nullable=False),  # stable across re-publishing
    sa.Column("command_id", sa.String(128)),  # replies: the idempotency key
    sa.Column("reply_to", sa.String(255)),  # replies: where to; None: stored only
    sa.Column("correlation_id", sa.String(255)),
    sa.Column("body", sa.Text, nullable=False),  # the JSON sent, as sent
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("published_at", sa.DateTime(timezone=True)),
    sa.Column("replica", sa.String(128)),  # whose relay sends the row (None: any replica's)
    sa.Index("ux_f8a_outbox_command_id", "command_id", unique=True),
    # each relay reads its own replica's unsent rows in order (revision 0006)
    sa.Index(
        "ix_f8a_outbox_unsent",
        "replica",
        "id",
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    ),
    sa.Index("ix_f8a_outbox_created_at", "created_at"),
)

#: consecutive failed runs of jobs created with ``pause_after_failures`` (a success or a resume clears it)
failure_streaks = sa.Table(
    "f8a_failure_streaks",
    metadata,
    sa.Column("job_id", sa.String(191), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
)

#: the one run a job with ``overlap: buffer_one`` keeps while its previous run still runs
buffered_runs = sa.Table(
    "f8a_buffered_runs",
    metadata,
    sa.Column("job_id", sa.String(191), primary_key=True),
    sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False),
)

#: backfills in progress (``job.backfill``): their runs, started in order, at most ``concurrency`` at once
backfills = sa.Table(
    "f8a_backfills",
    metadata,
    sa.Column("backfill_id", sa.String(36), primary_key=True),
    sa.Column("job_id", sa.String(191), nullable=False),
    sa.Column("concurrency", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_by", sa.JSON),  # who asked for it
)
backfill_runs = sa.Table(
    "f8a_backfill_runs",
    metadata,
    sa.Column("backfill_id", sa.String(36), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("run_id", sa.String(36)),  # set when started (its ledger entry while it runs)
)

run_ledger = sa.Table(
    "f8a_run_ledger",
    metadata,
    sa.Column("run_id", sa.String(36), primary_key=True),
    sa.Column("job_id", sa.String(191), nullable=False),
    sa.Column("handler", sa.String(191), nullable=False),
    sa.Column("kwargs", sa.JSON, nullable=False),
    sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("on_interrupt", sa.String(16), nullable=False),
    sa.Column("worker", sa.String(128), nullable=False),  # the replica that runs it
    sa.Column("started_by", sa.JSON),  # who started it (run_now, backfill); null: the schedule
    sa.Index("ix_f8a_run_ledger_job_id", "job_id"),
)

replicas = sa.Table(
    "f8a_replicas",
    metadata,
    sa.Column("replica_id", sa.String(128), primary_key=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("tz_rules", sa.String(16), nullable=True),  # null: a replica of 0.1.0
)

counts = sa.Table(
    "f8a_counts",
    metadata,
    sa.Column("counter", sa.String(32), primary_key=True),  # jobs:user, jobs:default, failures
    sa.Column("shard", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("n", sa.BigInteger, nullable=False),
)

audit = sa.Table(
    "f8a_audit",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("principal", sa.String(255), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("on_behalf_of", sa.String(255)),
    sa.Column("command", sa.String(64)),
    sa.Column("command_id", sa.String(128), nullable=False),
    sa.Column("job_id", sa.String(191)),
    sa.Column("outcome", sa.String(32), nullable=False),  # ok, or the error code
    sa.Column("message", sa.Text),
    sa.Index("ix_f8a_audit_job_id", "job_id", "id"),
    sa.Index("ix_f8a_audit_principal", "principal", "id"),
    sa.Index("ix_f8a_audit_at", "at"),
)

signatures_seen = sa.Table(
    "f8a_signatures_seen",
    metadata,
    sa.Column("signature", sa.String(64), primary_key=True),
    sa.Column("command_id", sa.String(128), nullable=False),
    sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_f8a_signatures_seen_at", "seen_at"),
)

#: each job's last run that ran (executed or failed), for job.list's ``failing`` filter (``last_runs.py``)
last_runs = sa.Table(
    "f8a_last_runs",
    metadata,
    sa.Column("job_id", sa.String(191), primary_key=True),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index(
        "ix_f8a_last_runs_failed",
        "job_id",
        postgresql_where=sa.text("outcome = 'failed'"),
        sqlite_where=sa.text("outcome = 'failed'"),
    ),
)
