"""Whole-scheduler state that survives restarts and holds for every replica: an operator's ``scheduler.pause``
stays in force. Every scheduler pass reads it under a share lock, so a pause and a pass are ordered: once the
pause has committed, no replica's pass fires anything.
"""

from __future__ import annotations

import sqlalchemy as sa

from f8a_jobs_worker.persistence.tables import scheduler_state
from f8a_jobs_worker.persistence.unit_of_work import UnitOfWork

_PAUSED = "paused"
# built once: every scheduler pass reads the pause
_PAUSED_READ = sa.select(scheduler_state.c.value).where(scheduler_state.c.key == _PAUSED)
_PAUSED_LOCKED = _PAUSED_READ.with_for_update(read=True)


class SchedulerStateStore:
    def ensure(self, uow: UnitOfWork) -> None:
        """The row a pass locks must exist before any pass or pause (replicas starting together may race)."""
        self.ensure_value(uow, _PAUSED, "false")

    def ensure_value(self, uow: UnitOfWork, key: str, default: str) -> None:
        """Insert ``key`` with ``default`` unless it is there (another replica may insert it meanwhile)."""
        connection = uow.connection
        exists = sa.select(scheduler_state.c.key).where(scheduler_state.c.key == key)
        if connection.execute(exists).first() is None:
            try:
                with connection.begin_nested():
                    connection.execute(
                        scheduler_state.insert().values(
                            key=key, value=default, updated_at=uow.now()
                        )
                    )
            except sa.exc.IntegrityError:
                pass  # another replica made it

    def is_paused(self, uow: UnitOfWork, lock: bool = False) -> bool:
        """``lock``: hold a share lock on the row until the transaction ends (a pause waits for it)."""
        return uow.connection.execute(_PAUSED_LOCKED if lock else _PAUSED_READ).scalar() == "true"

    def value(self, uow: UnitOfWork, key: str, lock: bool = False) -> str | None:
        """A stored value (None if never set); ``lock``: the row locked until the unit of work ends."""
        query = sa.select(scheduler_state.c.value).where(scheduler_state.c.key == key)
        return uow.connection.execute(query.with_for_update() if lock else query).scalar()

    def set_value(self, uow: UnitOfWork, key: str, value: str) -> None:
        values = {"value": value, "updated_at": uow.now()}
        updated = uow.connection.execute(
            scheduler_state.update().where(scheduler_state.c.key == key).values(**values)
        )
        if not updated.rowcount:
            uow.connection.execute(scheduler_state.insert().values(key=key, **values))

    def set_paused(self, uow: UnitOfWork, paused: bool) -> None:
        self.set_value(uow, _PAUSED, "true" if paused else "false")
