"""Whole-scheduler state that survives restarts: an operator's ``scheduler.pause`` stays in force.

Seam for several replicas: a leader lease (who owns the scheduler) would live in this table too.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from f8a_jobs_worker.persistence.tables import scheduler_state

_PAUSED = "paused"


class SchedulerStateStore:
    def is_paused(self, connection: sa.Connection) -> bool:
        query = sa.select(scheduler_state.c.value).where(scheduler_state.c.key == _PAUSED)
        return connection.execute(query).scalar() == "true"

    def set_paused(self, connection: sa.Connection, paused: bool) -> None:
        values = {"value": "true" if paused else "false", "updated_at": datetime.now(UTC)}
        updated = connection.execute(
            scheduler_state.update().where(scheduler_state.c.key == _PAUSED).values(**values)
        )
        if not updated.rowcount:
            connection.execute(scheduler_state.insert().values(key=_PAUSED, **values))
