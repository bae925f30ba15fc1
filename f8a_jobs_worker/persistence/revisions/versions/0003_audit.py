"""Who did what: the audit table, the signatures seen within the replay window, and who started a run
(``started_by`` on runs, ledger entries and backfills; null: the schedule). Every new column is nullable, so
replicas of the previous release keep writing rows during a rolling deploy.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_STARTED_BY = ("f8a_job_runs", "f8a_run_ledger", "f8a_backfills")


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table in _STARTED_BY:
        if "started_by" not in {c["name"] for c in inspector.get_columns(table)}:
            op.add_column(table, sa.Column("started_by", sa.JSON, nullable=True))
    tables = set(inspector.get_table_names())
    if "f8a_audit" not in tables:
        op.create_table(
            "f8a_audit",
            sa.Column("id", _ID, primary_key=True, autoincrement=True),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("principal", sa.String(255), nullable=False),
            sa.Column("source", sa.String(16), nullable=False),
            sa.Column("on_behalf_of", sa.String(255)),
            sa.Column("command", sa.String(64)),
            sa.Column("command_id", sa.String(128), nullable=False),
            sa.Column("job_id", sa.String(191)),
            sa.Column("outcome", sa.String(32), nullable=False),
            sa.Column("message", sa.Text),
        )
        op.create_index("ix_f8a_audit_job_id", "f8a_audit", ["job_id", "id"])
        op.create_index("ix_f8a_audit_principal", "f8a_audit", ["principal", "id"])
        op.create_index("ix_f8a_audit_at", "f8a_audit", ["at"])
    if "f8a_signatures_seen" not in tables:
        op.create_table(
            "f8a_signatures_seen",
            sa.Column("signature", sa.String(64), primary_key=True),
            sa.Column("command_id", sa.String(128), nullable=False),
            sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        )
        op.create_index("ix_f8a_signatures_seen_at", "f8a_signatures_seen", ["seen_at"])


def downgrade() -> None:
    op.drop_table("f8a_signatures_seen")
    op.drop_table("f8a_audit")
    for table in _STARTED_BY:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("started_by")
