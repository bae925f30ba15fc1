"""Run history, failure records, failure streaks and kept runs: the rows of what happened to runs.

A run's outcome is one history row and, for a failed run, a failure record with its traceback, written
together (:meth:`RunStore.insert`), so a failure is never listed without its run. Who writes them, with the
event and the end of the run's ledger entry in the same transaction, is
:mod:`f8a_jobs_worker.scheduling.outcomes`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from f8a_jobs_worker.access.principal import SCHEDULE
from f8a_jobs_worker.errors import ValidationFailed
from f8a_jobs_worker.persistence import counts as counters
from f8a_jobs_worker.persistence import last_runs
from f8a_jobs_worker.persistence.bulk import insert_rows
from f8a_jobs_worker.persistence.database import as_utc, store_errors
from f8a_jobs_worker.persistence.tables import failure_streaks, job_failures, job_runs
from f8a_jobs_worker.persistence.unit_of_work import UnitOfWork

# statements built once: SQLAlchemy reuses their compiled form instead of building a cache key per run
_CLEAR_STREAKS = failure_streaks.delete().where(
    failure_streaks.c.job_id.in_(sa.bindparam("ids", expanding=True))
)
_FORGET_BUFFERED = sa.text("DELETE FROM f8a_buffered_runs WHERE job_id IN :ids").bindparams(
    sa.bindparam("ids", expanding=True)
)
_BUFFER = sa.text(
    "INSERT INTO f8a_buffered_runs (job_id, scheduled_at) VALUES (:job_id, :scheduled_at) "
    "ON CONFLICT (job_id) DO NOTHING"
).bindparams(sa.bindparam("scheduled_at", type_=sa.DateTime(timezone=True)))
_TAKE_BUFFERED = sa.text(
    "DELETE FROM f8a_buffered_runs WHERE job_id = :job_id RETURNING scheduled_at"
).columns(sa.column("scheduled_at", sa.DateTime(timezone=True)))
# an upsert both PostgreSQL and SQLite (3.35+) read the same way
_ADD_FAILURE = sa.text(
    "INSERT INTO f8a_failure_streaks (job_id, failures) VALUES (:job_id, 1) "
    "ON CONFLICT (job_id) DO UPDATE SET failures = f8a_failure_streaks.failures + 1 "
    "RETURNING failures"
)


@dataclass(frozen=True)
class RunRecord:
    """What happened to one scheduled run of a job."""

    job_id: str
    handler: str
    outcome: str  # executed | failed | missed | interrupted
    scheduled_at: datetime | None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    summary: dict[str, Any] | None = None
    error: str | None = None

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class RunRows:
    """The rows one run outcome writes: its history row and, for a failed run, its failure record."""

    run: dict[str, Any]
    failure: dict[str, Any] | None

    @property
    def failure_id(self) -> str | None:
        return None if self.failure is None else str(self.failure["failure_id"])

    @classmethod
    def of(
        cls,
        run: RunRecord,
        now: datetime,
        kwargs: dict[str, Any] | None = None,
        traceback: str | None = None,
        started_by: dict[str, Any] | None = None,
    ) -> RunRows:
        finished = run.finished_at or now
        failure = None
        if run.outcome == "failed":
            failure = {
                "failure_id": str(uuid.uuid4()),
                "failed_job_id": run.job_id,
                "handler": run.handler,
                "kwargs": kwargs or {},
                "error": run.error or "",
                "traceback": traceback,
                "failed_at": finished,
            }
        return cls(
            {
                "job_id": run.job_id,
                "handler": run.handler,
                "outcome": run.outcome,
                "scheduled_at": run.scheduled_at,
                "started_at": run.started_at,
                "finished_at": finished,
                "duration_s": run.duration_s,
                "summary": run.summary,
                "error": run.error,
                "failure_id": None if failure is None else failure["failure_id"],
                "started_by": started_by,
            },
            failure,
        )


class RunStore:
    """``f8a_job_runs``, ``f8a_job_failures``, ``f8a_failure_streaks`` and ``f8a_buffered_runs``; every
    method works on the caller's unit of work."""

    @staticmethod
    def insert(uow: UnitOfWork, outcomes: list[RunRows]) -> None:
        """Outcomes' rows, one statement per table: failure records, then history rows."""
        insert_rows(uow.connection, job_failures, [o.failure for o in outcomes if o.failure])
        insert_rows(uow.connection, job_runs, [o.run for o in outcomes])
        last_runs.record(uow, [o.run for o in outcomes])

    # -- failure streaks (pause_after_failures) ------------------------------------------------------------

    @staticmethod
    def add_failure(uow: UnitOfWork, job_id: str) -> int:
        """One more consecutive failure of ``job_id``; how many there are now."""
        return int(uow.connection.execute(_ADD_FAILURE, {"job_id": job_id}).scalar_one())

    @staticmethod
    def clear_streaks(uow: UnitOfWork, job_ids: list[str]) -> None:
        """Forget jobs' consecutive failures (a success, a resume, a replace, a delete)."""
        if job_ids:
            uow.connection.execute(_CLEAR_STREAKS, {"ids": job_ids})

    # -- the run an ``overlap: buffer_one`` job keeps -------------------------------------------------------

    @staticmethod
    def buffer(uow: UnitOfWork, job_id: str, scheduled_at: datetime) -> bool:
        """Keep a run of a ``buffer_one`` job for when its running one ends; False if one is kept already."""
        kept = uow.connection.execute(_BUFFER, {"job_id": job_id, "scheduled_at": scheduled_at})
        return bool(kept.rowcount)

    @staticmethod
    def take_buffered(uow: UnitOfWork, job_id: str) -> datetime | None:
        """The run kept for ``job_id`` (removed), or None."""
        taken = uow.connection.execute(_TAKE_BUFFERED, {"job_id": job_id}).scalar_one_or_none()
        return None if taken is None else as_utc(taken)

    @classmethod
    def forget(cls, uow: UnitOfWork, job_ids: list[str]) -> None:
        """Jobs deleted or replaced: their failure counts and kept runs go with them."""
        if job_ids:
            cls.clear_streaks(uow, job_ids)
            uow.connection.execute(_FORGET_BUFFERED, {"ids": job_ids})
            last_runs.forget(uow, job_ids)

    # -- reads and retention -------------------------------------------------------------------------------

    @staticmethod
    def history(
        uow: UnitOfWork, job_id: str, limit: int = 100, after: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The latest runs of one job, newest first, from the run after ``after`` (the key of the previous
        page), and the key of the next page (None on the last); a failed run with its traceback while its
        failure record is kept (``jobs.clean_failed`` removes them)."""
        query = (
            sa.select(job_runs, job_failures.c.traceback)
            .select_from(
                job_runs.outerjoin(job_failures, job_failures.c.failure_id == job_runs.c.failure_id)
            )
            .where(job_runs.c.job_id == job_id)
        )
        if after is not None:
            query = query.where(job_runs.c.id < _run_key(after))
        query = query.order_by(job_runs.c.id.desc()).limit(limit + 1)
        with store_errors("run history"):
            rows = uow.connection.execute(query).all()
        following = str(rows[limit - 1].id) if len(rows) > limit else None
        return [_run_view(row._mapping) for row in rows[:limit]], following

    @staticmethod
    def failures(
        uow: UnitOfWork, limit: int, offset: int = 0, after: str | None = None
    ) -> tuple[list[dict[str, Any]], int, str | None]:
        """Failure records, oldest first, in the job view shape of ``job.list`` with ``job_type: failed``;
        their number; the key of the next page (``<failed_at> <failure_id>``; None on the last)."""
        query = sa.select(job_failures)
        if after is not None:
            failed_at, failure_id = _failure_key(after)
            query = query.where(
                sa.or_(
                    job_failures.c.failed_at > failed_at,
                    sa.and_(
                        job_failures.c.failed_at == failed_at,
                        job_failures.c.failure_id > failure_id,
                    ),
                )
            )
        query = (
            query.order_by(job_failures.c.failed_at, job_failures.c.failure_id)
            .limit(limit + 1)
            .offset(offset)
        )
        with store_errors("failure records"):
            total = counters.totals(uow.connection)[counters.FAILURES]
            rows = uow.connection.execute(query).all()
        following = None
        if len(rows) > limit and limit > 0:
            last = rows[limit - 1]
            following = f"{_iso(last.failed_at)} {last.failure_id}"
        return [_failure_view(row._mapping) for row in rows[:limit]], total, following

    @staticmethod
    def clean_failures(uow: UnitOfWork) -> list[str]:
        """Remove every failure record; return the removed failure ids."""
        with store_errors("failure records"):
            ids = list(uow.connection.execute(sa.select(job_failures.c.failure_id)).scalars())
            if ids:
                uow.connection.execute(
                    job_failures.delete().where(job_failures.c.failure_id.in_(ids))
                )
        return ids

    @staticmethod
    def prune(uow: UnitOfWork, max_age: timedelta, per_job: int) -> int:
        """Apply history retention: drop runs older than ``max_age`` and beyond ``per_job`` per job."""
        cutoff = uow.now() - max_age
        ranked = sa.select(
            job_runs.c.id,
            sa.func.row_number()
            .over(partition_by=job_runs.c.job_id, order_by=job_runs.c.id.desc())
            .label("rank"),
        ).subquery()
        surplus = sa.select(ranked.c.id).where(ranked.c.rank > per_job)
        with store_errors("run history"):
            old = uow.connection.execute(job_runs.delete().where(job_runs.c.finished_at < cutoff))
            extra = uow.connection.execute(job_runs.delete().where(job_runs.c.id.in_(surplus)))
            return int(old.rowcount or 0) + int(extra.rowcount or 0)


def _not_a_key(listing: str) -> ValidationFailed:
    return ValidationFailed(
        f"after must be the next key a {listing} reply gave",
        [{"path": "$.after", "message": f"not a key of {listing}"}],
    )


def _run_key(after: str) -> int:
    try:
        return int(after)
    except ValueError:
        raise _not_a_key("job.history") from None


def _failure_key(after: str) -> tuple[datetime, str]:
    failed_at, _, failure_id = after.partition(" ")
    try:
        moment = datetime.fromisoformat(failed_at)
    except ValueError:
        raise _not_a_key("job.list (failed)") from None
    if not failure_id:
        raise _not_a_key("job.list (failed)")
    return as_utc(moment) or moment, failure_id


def _iso(moment: datetime | None) -> str | None:
    moment = as_utc(moment)
    return moment.isoformat() if moment else None


def _run_view(row: Any) -> dict[str, Any]:
    return {
        "job_id": row["job_id"],
        "handler": row["handler"],
        "outcome": row["outcome"],
        "scheduled_at": _iso(row["scheduled_at"]),
        "started_at": _iso(row["started_at"]),
        "finished_at": _iso(row["finished_at"]),
        "duration_s": row["duration_s"],
        "summary": row["summary"],
        "error": row["error"],
        "failure_id": row["failure_id"],
        "started_by": row.get("started_by") or SCHEDULE.to_dict(),
        "traceback": row.get("traceback"),
    }


def _failure_view(row: Any) -> dict[str, Any]:
    return {
        "job_id": row["failure_id"],
        "failed_job_id": row["failed_job_id"],
        "handler": row["handler"],
        "kwargs": row["kwargs"],
        "error": row["error"],
        "traceback": row["traceback"],
        "failed_at": _iso(row["failed_at"]),
    }
