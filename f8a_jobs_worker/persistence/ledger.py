"""The run ledger: a run is entered before its handler starts and leaves when its outcome is recorded.

The entry is written in the transaction that decided the run (the scheduler's pass, or ``job.run_now``), and
removed in the one that records its outcome (``scheduling/outcomes.py``). ``worker`` is the replica that runs
it.
An entry whose replica is no longer registered (killed, or cut off for longer than the lapse) belongs to a run
that never finished: a surviving replica, or the next start, reports it as interrupted and runs it again if its
job asked for that (``on_interrupt: retry``). The ledger is also how ``max_instances`` holds across replicas:
the runs of a job in progress anywhere are its entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from f8a_jobs_worker.ids import random_id
from f8a_jobs_worker.persistence.database import as_utc
from f8a_jobs_worker.persistence.tables import replicas, run_ledger
from f8a_jobs_worker.persistence.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class LedgerEntry:
    run_id: str
    job_id: str
    handler: str
    kwargs: dict[str, Any]
    scheduled_at: datetime
    on_interrupt: str = "report"
    #: the job's ``pause_after_failures`` (not stored: an interrupted run is neither a failure nor a success)
    pause_after_failures: int | None = None
    #: who started it (``job.run_now``, ``job.backfill``: a principal's wire form); None: the schedule
    started_by: dict[str, Any] | None = None

    @classmethod
    def new(
        cls,
        job_id: str,
        handler: str,
        kwargs: dict[str, Any],
        scheduled_at: datetime,
        on_interrupt: str,
        pause_after_failures: int | None = None,
        started_by: dict[str, Any] | None = None,
    ) -> LedgerEntry:
        return cls(
            random_id(),
            job_id,
            handler,
            kwargs,
            scheduled_at,
            on_interrupt,
            pause_after_failures,
            started_by,
        )


# built once (a pass asks every time): SQLAlchemy reuses the compiled statement
_ELSEWHERE = (
    sa.select(run_ledger.c.job_id, sa.func.count())
    .where(
        run_ledger.c.job_id.in_(sa.bindparam("ids", expanding=True)),
        run_ledger.c.worker != sa.bindparam("worker"),
    )
    .group_by(run_ledger.c.job_id)
)


_END_RUNS = run_ledger.delete().where(
    run_ledger.c.run_id.in_(sa.bindparam("ended", expanding=True))
)


class RunLedger:
    def __init__(self, worker: str) -> None:
        self.worker = worker

    def start(self, uow: UnitOfWork, entries: list[LedgerEntry]) -> None:
        """Enter runs about to start, with ``uow`` (the rows of a whole pass go in one statement)."""
        now = uow.now()
        for e in entries:
            uow.insert_later(
                run_ledger,
                {
                    "run_id": e.run_id,
                    "job_id": e.job_id,
                    "handler": e.handler,
                    "kwargs": e.kwargs,
                    "scheduled_at": e.scheduled_at,
                    "submitted_at": now,
                    "on_interrupt": e.on_interrupt,
                    "worker": self.worker,
                    "started_by": e.started_by,
                },
            )

    def take_interrupted(
        self, uow: UnitOfWork, run_ids: list[str] | None = None
    ) -> list[LedgerEntry]:
        """Remove and return, oldest first, the entries of replicas that are gone (or, with ``run_ids``,
        those runs of this replica that it will not start after all). Removing is the claim: of two
        replicas taking over at once, each entry goes to one."""
        condition = (
            run_ledger.c.run_id.in_(run_ids)
            if run_ids is not None
            else run_ledger.c.worker.not_in(sa.select(replicas.c.replica_id))
        )
        deleted = run_ledger.delete().where(condition).returning(*run_ledger.c)
        rows = uow.connection.execute(deleted)
        return sorted(
            (
                LedgerEntry(
                    row.run_id,
                    row.job_id,
                    row.handler,
                    dict(row.kwargs or {}),
                    as_utc(row.scheduled_at) or uow.now(),
                    row.on_interrupt,
                    started_by=row.started_by,
                )
                for row in rows
            ),
            key=lambda entry: entry.scheduled_at,
        )

    def running_elsewhere(self, uow: UnitOfWork, job_ids: list[str]) -> dict[str, int]:
        """Runs of ``job_ids`` in progress on other replicas."""
        if not job_ids:
            return {}
        found = uow.connection.execute(_ELSEWHERE, {"ids": job_ids, "worker": self.worker})
        return {job_id: int(count) for job_id, count in found}

    def running(self, uow: UnitOfWork) -> int:
        """Runs entered and not finished."""
        query = sa.select(sa.func.count()).select_from(run_ledger)
        return int(uow.connection.execute(query).scalar_one())

    @staticmethod
    def end(uow: UnitOfWork, run_ids: list[str]) -> None:
        """Runs whose outcomes this unit of work records leave the ledger."""
        if run_ids:
            uow.connection.execute(_END_RUNS, {"ended": run_ids})
