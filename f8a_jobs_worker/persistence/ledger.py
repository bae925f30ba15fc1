"""The run ledger: a run is entered before its handler starts and leaves when its outcome is recorded.

The entry is written in the transaction that decided the run (the scheduler's pass, or ``job.run_now``), and
removed in the one that records its outcome (:meth:`RunStore.finish`). An entry still there when a worker
starts belongs to a run that never finished: the worker that ran it was killed. It is reported as interrupted,
and run again if its job asked for that (``on_interrupt: retry``). One worker per job store today: every
entry found at start is from a worker that is gone (``worker`` says which).
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from f8a_jobs_worker.persistence.database import as_utc
from f8a_jobs_worker.persistence.tables import run_ledger
from f8a_jobs_worker.persistence.unit_of_work import UnitOfWork

ON_INTERRUPT = ("report", "retry")
_INSERT = run_ledger.insert()


def worker_identity() -> str:
    """host:pid:random, unique per process start."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:128]


@dataclass(frozen=True)
class LedgerEntry:
    run_id: str
    job_id: str
    handler: str
    kwargs: dict[str, Any]
    scheduled_at: datetime
    on_interrupt: str = "report"

    @classmethod
    def new(
        cls,
        job_id: str,
        handler: str,
        kwargs: dict[str, Any],
        scheduled_at: datetime,
        on_interrupt: str,
    ) -> LedgerEntry:
        return cls(str(uuid.uuid4()), job_id, handler, kwargs, scheduled_at, on_interrupt)


class RunLedger:
    def __init__(self, worker: str | None = None) -> None:
        self.worker = worker or worker_identity()

    def start(self, uow: UnitOfWork, entries: list[LedgerEntry]) -> None:
        """Enter runs about to start, with ``uow`` (the rows of a whole pass go in one statement)."""
        now = datetime.now(UTC)
        for e in entries:
            uow.insert_later(
                _INSERT,
                {
                    "run_id": e.run_id,
                    "job_id": e.job_id,
                    "handler": e.handler,
                    "kwargs": e.kwargs,
                    "scheduled_at": e.scheduled_at,
                    "submitted_at": now,
                    "on_interrupt": e.on_interrupt,
                    "worker": self.worker,
                },
            )

    def take_interrupted(self, connection: sa.Connection) -> list[LedgerEntry]:
        """Every entry left by workers that are gone, oldest first, removed from the ledger."""
        rows = connection.execute(
            sa.select(run_ledger)
            .where(run_ledger.c.worker != self.worker)
            .order_by(run_ledger.c.submitted_at)
        ).all()
        if rows:
            connection.execute(
                run_ledger.delete().where(run_ledger.c.run_id.in_([row.run_id for row in rows]))
            )
        return [
            LedgerEntry(
                row.run_id,
                row.job_id,
                row.handler,
                dict(row.kwargs or {}),
                as_utc(row.scheduled_at) or datetime.now(UTC),
                row.on_interrupt,
            )
            for row in rows
        ]

    def running(self, connection: sa.Connection) -> int:
        """Runs entered and not finished."""
        return int(
            connection.execute(sa.select(sa.func.count()).select_from(run_ledger)).scalar_one()
        )
