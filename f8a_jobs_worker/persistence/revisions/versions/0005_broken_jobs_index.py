"""Jobs marked broken through an index of their own: every start looks for repaired ones, and ``job.list``
filters by ``state: broken``; without it both read the whole job table (0.7 s at ten million jobs).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    indexes = {index["name"] for index in sa.inspect(op.get_bind()).get_indexes("f8a_jobs")}
    if "ix_f8a_jobs_broken" not in indexes:
        op.create_index(
            "ix_f8a_jobs_broken",
            "f8a_jobs",
            ["id"],
            postgresql_where=sa.text("broken IS NOT NULL"),
            sqlite_where=sa.text("broken IS NOT NULL"),
        )


def downgrade() -> None:
    op.drop_index("ix_f8a_jobs_broken", "f8a_jobs")
