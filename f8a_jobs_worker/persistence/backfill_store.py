"""Backfills (``job.backfill``): the runs a schedule had in a past window, stored, then started in order.

A backfill is written whole in the command's transaction, so it survives any crash; which of its runs start
next is decided in short transactions that lock the backfill's row (one replica at a time decides for it):
the next unstarted runs by sequence, as many as ``concurrency`` minus those still in the run ledger.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from f8a_jobs_worker.persistence.database import as_utc
from f8a_jobs_worker.persistence.tables import backfill_runs, backfills, run_ledger
from f8a_jobs_worker.persistence.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class Due:
    """A backfill run to start now."""

    backfill_id: str
    job_id: str
    seq: int
    scheduled_at: datetime
    #: who asked for the backfill (a principal's wire form)
    started_by: dict[str, Any] | None = None


class BackfillStore:
    def create(
        self,
        uow: UnitOfWork,
        job_id: str,
        times: list[datetime],
        concurrency: int,
        started_by: dict[str, Any] | None = None,
    ) -> str:
        connection = uow.connection
        backfill_id = str(uuid.uuid4())
        connection.execute(
            backfills.insert(),
            {
                "backfill_id": backfill_id,
                "job_id": job_id,
                "concurrency": concurrency,
                "created_at": uow.now(),
                "started_by": started_by,
            },
        )
        connection.execute(
            backfill_runs.insert(),
            [
                {"backfill_id": backfill_id, "seq": seq, "scheduled_at": at, "run_id": None}
                for seq, at in enumerate(times)
            ],
        )
        return backfill_id

    def due(self, uow: UnitOfWork, limit: int = 100) -> list[Due]:
        """The runs to start now, in order, their backfills' rows locked (others' skipped) until commit."""
        connection = uow.connection
        found: list[Due] = []
        claimed = connection.execute(
            sa.select(
                backfills.c.backfill_id,
                backfills.c.job_id,
                backfills.c.concurrency,
                backfills.c.started_by,
            )
            .order_by(backfills.c.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for backfill_id, job_id, concurrency, started_by in claimed:
            running = connection.execute(
                sa.select(sa.func.count())
                .select_from(
                    backfill_runs.join(run_ledger, backfill_runs.c.run_id == run_ledger.c.run_id)
                )
                .where(backfill_runs.c.backfill_id == backfill_id)
            ).scalar_one()
            room = int(concurrency) - int(running)
            if room <= 0:
                continue
            rows = connection.execute(
                sa.select(backfill_runs.c.seq, backfill_runs.c.scheduled_at)
                .where(backfill_runs.c.backfill_id == backfill_id, backfill_runs.c.run_id.is_(None))
                .order_by(backfill_runs.c.seq)
                .limit(room)
            ).all()
            found.extend(
                Due(backfill_id, job_id, seq, as_utc(at) or at, started_by) for seq, at in rows
            )
        return found

    def started(self, uow: UnitOfWork, due: Due, run_id: str) -> None:
        uow.connection.execute(
            backfill_runs.update()
            .where(backfill_runs.c.backfill_id == due.backfill_id, backfill_runs.c.seq == due.seq)
            .values(run_id=run_id)
        )

    def finish_done(self, uow: UnitOfWork) -> list[tuple[str, str]]:
        """Remove the backfills whose runs have all started and ended; ``(backfill_id, job_id)`` of each."""
        connection = uow.connection
        unfinished = (
            sa.select(backfill_runs.c.backfill_id)
            .outerjoin(run_ledger, backfill_runs.c.run_id == run_ledger.c.run_id)
            .where(sa.or_(backfill_runs.c.run_id.is_(None), run_ledger.c.run_id.is_not(None)))
        )
        done = connection.execute(
            sa.select(backfills.c.backfill_id, backfills.c.job_id).where(
                backfills.c.backfill_id.not_in(unfinished)
            )
        ).all()
        ids = [backfill_id for backfill_id, _ in done]
        if ids:
            connection.execute(backfill_runs.delete().where(backfill_runs.c.backfill_id.in_(ids)))
            connection.execute(backfills.delete().where(backfills.c.backfill_id.in_(ids)))
        return [(str(b), str(j)) for b, j in done]

    def forget_jobs(self, uow: UnitOfWork, job_ids: list[str]) -> None:
        """Deleted jobs' backfills go with them (one statement per table for all of them)."""
        if not job_ids:
            return
        connection = uow.connection
        of_jobs = backfills.c.job_id.in_(job_ids)
        ids = sa.select(backfills.c.backfill_id).where(of_jobs)
        connection.execute(backfill_runs.delete().where(backfill_runs.c.backfill_id.in_(ids)))
        connection.execute(backfills.delete().where(of_jobs))
