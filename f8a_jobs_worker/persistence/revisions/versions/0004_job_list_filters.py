"""What job.list's filters read through indexes: each job's last run that ran (``f8a_last_runs``, for
``failing``), jobs by handler, paused jobs, and on PostgreSQL job ids in byte order (``COLLATE "C"``): a
prefix is then one range of that index, read in order, whatever the database's collation.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    if "f8a_last_runs" not in set(inspector.get_table_names()):
        op.create_table(
            "f8a_last_runs",
            sa.Column("job_id", sa.String(191), primary_key=True),
            sa.Column("outcome", sa.String(16), nullable=False),
            sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        )
        op.create_index(
            "ix_f8a_last_runs_failed",
            "f8a_last_runs",
            ["job_id"],
            postgresql_where=sa.text("outcome = 'failed'"),
            sqlite_where=sa.text("outcome = 'failed'"),
        )
    indexes = {index["name"] for index in inspector.get_indexes("f8a_jobs")}
    if "ix_f8a_jobs_handler" not in indexes:
        op.create_index("ix_f8a_jobs_handler", "f8a_jobs", ["handler", "id"])
    if "ix_f8a_jobs_paused" not in indexes:
        op.create_index(
            "ix_f8a_jobs_paused",
            "f8a_jobs",
            ["id"],
            postgresql_where=sa.text("next_run_time IS NULL"),
            sqlite_where=sa.text("next_run_time IS NULL"),
        )
    if bind.dialect.name == "postgresql" and "ix_f8a_jobs_id_prefix" not in indexes:
        op.create_index("ix_f8a_jobs_id_prefix", "f8a_jobs", [sa.text('id COLLATE "C"')])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_f8a_jobs_id_prefix", "f8a_jobs")
    op.drop_index("ix_f8a_jobs_paused", "f8a_jobs")
    op.drop_index("ix_f8a_jobs_handler", "f8a_jobs")
    op.drop_table("f8a_last_runs")
