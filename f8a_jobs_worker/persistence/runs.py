"""Run history and failure records.

A failed run writes its failure record and its history row in one transaction, so a failure is never listed
without its run or the other way round. This is also where a future outbox row for the ``job.failed`` event
would be written, in that same transaction (see docs/architecture.md).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from f8a_jobs_worker.group_commit import GroupCommit
from f8a_jobs_worker.persistence.database import as_utc, connect, in_transaction, store_errors
from f8a_jobs_worker.persistence.tables import job_failures, job_runs

# statements built once: SQLAlchemy reuses their compiled form instead of building a cache key per run
# (which was a fifth of a busy worker's CPU)
_INSERT_RUN = job_runs.insert()
_INSERT_FAILURE = job_failures.insert()


@dataclass(frozen=True)
class RunRecord:
    """What happened to one scheduled run of a job."""

    job_id: str
    handler: str
    outcome: str  # executed | failed | missed
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
class _Rows:
    """The rows one run outcome writes."""

    run: dict[str, Any]
    failure: dict[str, Any] | None

    @property
    def failure_id(self) -> str | None:
        return None if self.failure is None else str(self.failure["failure_id"])

    @classmethod
    def of(cls, run: RunRecord, kwargs: dict[str, Any] | None, traceback: str | None) -> _Rows:
        finished = run.finished_at or datetime.now(UTC)
        failure_id = str(uuid.uuid4()) if run.outcome == "failed" else None
        failure = None
        if failure_id is not None:
            failure = {
                "failure_id": failure_id,
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
                "failure_id": failure_id,
            },
            failure,
        )


class RunStore:
    """Writes and reads ``f8a_job_runs`` and ``f8a_job_failures``."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._group: GroupCommit[_Rows, None] = GroupCommit(self._write)

    def record(
        self, run: RunRecord, kwargs: dict[str, Any] | None = None, traceback: str | None = None
    ) -> str | None:
        """Store a run outcome; for a failed run also its failure record, whose id is returned.

        Inside an open transaction (a scheduler pass) the rows join it. Otherwise the records of the runner
        threads share their commits (:class:`GroupCommit`): each call still returns once its rows are
        committed.
        """
        rows = _Rows.of(run, kwargs, traceback)
        with store_errors("run history"):
            if in_transaction(self.engine):
                self._write([rows])
            else:
                self._group.submit(rows)
        return rows.failure_id

    def _write(self, batch: list[_Rows]) -> list[None]:
        """A failed run's failure record and its history row are always in the same transaction."""
        failures = [rows.failure for rows in batch if rows.failure is not None]
        with connect(self.engine) as connection:
            if failures:
                connection.execute(_INSERT_FAILURE, failures)
            connection.execute(_INSERT_RUN, [rows.run for rows in batch])
        return [None] * len(batch)

    def history(self, job_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """The latest runs of one job, newest first."""
        query = (
            sa.select(job_runs)
            .where(job_runs.c.job_id == job_id)
            .order_by(job_runs.c.id.desc())
            .limit(limit)
        )
        with store_errors("run history"), connect(self.engine) as connection:
            return [_run_view(row._mapping) for row in connection.execute(query)]

    def failures(
        self, limit: int | None = None, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        """Failure records, oldest first, in the job view shape of ``job.list`` with ``job_type: failed``."""
        query = (
            sa.select(job_failures)
            .order_by(job_failures.c.failed_at, job_failures.c.failure_id)
            .limit(limit)
            .offset(offset)
        )
        count = sa.select(sa.func.count()).select_from(job_failures)
        with store_errors("failure records"), connect(self.engine) as connection:
            total = connection.execute(count).scalar_one()
            return [_failure_view(row._mapping) for row in connection.execute(query)], total

    def clean_failures(self) -> list[str]:
        """Remove every failure record; return the removed failure ids."""
        with store_errors("failure records"), connect(self.engine) as connection:
            ids = list(connection.execute(sa.select(job_failures.c.failure_id)).scalars())
            if ids:
                connection.execute(job_failures.delete().where(job_failures.c.failure_id.in_(ids)))
        return ids

    def prune(self, max_age: timedelta, per_job: int, now: datetime | None = None) -> int:
        """Apply history retention: drop runs older than ``max_age`` and beyond ``per_job`` per job."""
        cutoff = (now or datetime.now(UTC)) - max_age
        ranked = sa.select(
            job_runs.c.id,
            sa.func.row_number()
            .over(partition_by=job_runs.c.job_id, order_by=job_runs.c.id.desc())
            .label("rank"),
        ).subquery()
        surplus = sa.select(ranked.c.id).where(ranked.c.rank > per_job)
        with store_errors("run history"), connect(self.engine) as connection:
            old = connection.execute(job_runs.delete().where(job_runs.c.finished_at < cutoff))
            extra = connection.execute(job_runs.delete().where(job_runs.c.id.in_(surplus)))
            return int(old.rowcount or 0) + int(extra.rowcount or 0)


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
