"""Each replica's time-zone rules release (``f8a_replicas.tz_rules``), shown by ``scheduler.state`` so an
operator sees when replicas read different rules. Nullable: a replica of 0.1.0 does not write it.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    """Adds the column unless it is there (a store whose version table was lost is upgraded from 0001)."""
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("f8a_replicas")}
    if "tz_rules" not in columns:
        op.add_column("f8a_replicas", sa.Column("tz_rules", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("f8a_replicas") as table:
        table.drop_column("tz_rules")
