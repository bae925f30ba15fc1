"""The outbox's unsent rows indexed by the replica that sends them, then by order.

Each relay takes its replica's oldest unsent rows. With the index on ``id`` alone, PostgreSQL read every
entry of the partial index, those of rows other replicas send and those of rows already sent whose entries
wait for a vacuum, then filtered by replica and sorted: a take's cost grew with the events since the last
vacuum (4 ms after 6,000 creates of running jobs, against 0.08 ms with this index, read in order and
stopping at the limit). The heartbeat's search for rows of replicas that are gone reads it too, one
descent per replica. A replica of an older release, during a rolling deploy, takes its rows through the new
index with the same statement.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"

_UNSENT = sa.text("published_at IS NULL")


def _indexes() -> set[str | None]:
    return {index["name"] for index in sa.inspect(op.get_bind()).get_indexes("f8a_outbox")}


def _replace(old: str, new: str, columns: list[str]) -> None:
    """``new`` created where missing and ``old`` dropped where present: a store adopted without a recorded
    revision may have either already."""
    found = _indexes()
    if new not in found:
        op.create_index(new, "f8a_outbox", columns, postgresql_where=_UNSENT, sqlite_where=_UNSENT)
    if old in found:
        op.drop_index(old, "f8a_outbox")


def upgrade() -> None:
    _replace("ix_f8a_outbox_pending", "ix_f8a_outbox_unsent", ["replica", "id"])


def downgrade() -> None:
    _replace("ix_f8a_outbox_unsent", "ix_f8a_outbox_pending", ["id"])
