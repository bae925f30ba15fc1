"""Run history, failure records and the run ledger's end of a run.

A run's outcome is written in one transaction with everything that goes with it: its history row, for a
failed run its failure record, its ``job.*`` event (into the outbox) and the removal of its ledger entry. So a
failure is never listed without its run, a run never recorded without its event, and a run that finished is
never reported as interrupted.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa

from f8a_jobs_worker import retry
from f8a_jobs_worker.errors import Unavailable, ValidationFailed
from f8a_jobs_worker.events.model import Event
from f8a_jobs_worker.group_commit import GroupCommit, Written
from f8a_jobs_worker.persistence import counts as counters
from f8a_jobs_worker.persistence.bulk import insert_rows
from f8a_jobs_worker.persistence.database import as_utc, store_errors
from f8a_jobs_worker.persistence.tables import failure_streaks, job_failures, job_runs, run_ledger
from f8a_jobs_worker.persistence.unit_of_work import Transactions, UnitOfWork

log = logging.getLogger(__name__)

# statements built once: SQLAlchemy reuses their compiled form instead of building a cache key per run
# (which was a fifth of a busy worker's CPU)
_CLEAR_STREAK = failure_streaks.delete().where(failure_streaks.c.job_id == sa.bindparam("job_id"))
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
_END_RUNS = run_ledger.delete().where(
    run_ledger.c.run_id.in_(sa.bindparam("ended", expanding=True))
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
class _Rows:
    """The rows one run outcome writes, the event that announces it and the ledger entry it ends."""

    run: dict[str, Any]
    failure: dict[str, Any] | None
    event: Event | None = None
    run_id: str | None = None
    streak: bool = False  # the job counts consecutive failures (pause_after_failures)

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


class Recorded(NamedTuple):
    """What recording an outcome gave: the failure record's id (failed runs) and, for a job that counts
    them, its consecutive failures after this run (0 after a success)."""

    failure_id: str | None
    streak: int | None


class RunStore:
    """Writes and reads ``f8a_job_runs`` and ``f8a_job_failures``."""

    def __init__(self, transactions: Transactions) -> None:
        self.transactions = transactions
        #: set when the worker stops: outcomes not recorded by then are left to the run ledger
        self.stopping = threading.Event()
        self._outage = retry.Outage("job store (run records)", log)
        self._later: GroupCommit[_Rows, int | None] = GroupCommit(self._write_when_available)

    def finish_nowait(
        self,
        run: RunRecord,
        event: Callable[[str | None], Event],
        recorded: Callable[[Recorded | None], None],
        run_id: str | None = None,
        kwargs: dict[str, Any] | None = None,
        traceback: str | None = None,
        streak: bool = False,
    ) -> None:
        """Store a run's outcome with its event (``event(failure_id)``) and end its ledger entry; for a
        failed run also its failure record; with ``streak`` count the job's consecutive failures, all in one
        transaction. Without waiting: ``recorded`` is called once the outcome is committed (None if it
        could not be: the worker stopped while the store was down, or the rows were refused; the ledger
        entry then reports the run interrupted). Runner threads go on to their next run meanwhile, so the
        outcomes of a catch-up are written in batches as large as the backlog, not as the thread pool. A
        store that is down is waited for by the thread writing; the others queue (up to a bound)."""
        rows = _Rows.of(run, kwargs, traceback)
        rows = _Rows(rows.run, rows.failure, event(rows.failure_id), run_id, streak)
        failure_id = rows.failure_id

        def written(outcome: Written[int | None]) -> None:
            error = outcome.exception()
            if error is not None:
                log.error(
                    "could not record the %s run of job %s scheduled at %s (%s); its ledger entry "
                    "reports it interrupted",
                    run.outcome,
                    run.job_id,
                    run.scheduled_at,
                    error,
                )
            recorded(None if error is not None else Recorded(failure_id, outcome.result()))

        self._later.submit_nowait(rows, written)

    def _write_when_available(self, batch: list[_Rows]) -> list[int | None]:
        written = retry.until_available(
            lambda: self._write(batch), Unavailable, self._outage, self.stopping
        )
        if written is None:
            raise Unavailable("the worker stopped while the job store was down")
        return written

    def record(
        self,
        uow: UnitOfWork,
        run: RunRecord,
        event: Event,
    ) -> None:
        """Store an outcome decided inside a unit of work (a run skipped by the scheduler's pass)."""
        self._insert(uow, [_Rows.of(run, None, None)])
        uow.emit(event)

    def _write(self, batch: list[_Rows]) -> list[int | None]:
        with self.transactions.begin() as uow:
            self._insert(uow, batch)
            ended = [rows.run_id for rows in batch if rows.run_id is not None]
            if ended:
                uow.connection.execute(_END_RUNS, {"ended": ended})
            streaks = [self._count(uow.connection, rows) if rows.streak else None for rows in batch]
            for rows in batch:
                if rows.event is not None:
                    uow.emit(rows.event)
        return streaks

    @staticmethod
    def _count(connection: sa.Connection, rows: _Rows) -> int | None:
        """The job's consecutive failures after this run: one more after a failure, none after a success."""
        job_id, outcome = rows.run["job_id"], rows.run["outcome"]
        if outcome == "executed":
            connection.execute(_CLEAR_STREAK, {"job_id": job_id})
            return 0
        if outcome != "failed":
            return None
        return int(connection.execute(_ADD_FAILURE, {"job_id": job_id}).scalar_one())

    @staticmethod
    def clear_streak(connection: sa.Connection, job_id: str) -> None:
        """Forget a job's consecutive failures (it was resumed, replaced or deleted)."""
        connection.execute(_CLEAR_STREAK, {"job_id": job_id})

    @staticmethod
    def clear_streaks(connection: sa.Connection, job_ids: list[str]) -> None:
        """:meth:`clear_streak` for several jobs, in one statement."""
        if job_ids:
            connection.execute(_CLEAR_STREAKS, {"ids": job_ids})

    @classmethod
    def forget(cls, connection: sa.Connection, job_id: str) -> None:
        """A job deleted or replaced: its failure count and its kept run go with it."""
        cls.forget_many(connection, [job_id])

    @classmethod
    def forget_many(cls, connection: sa.Connection, job_ids: list[str]) -> None:
        """:meth:`forget` for several jobs, one statement per table for all of them."""
        if job_ids:
            cls.clear_streaks(connection, job_ids)
            connection.execute(_FORGET_BUFFERED, {"ids": job_ids})

    @staticmethod
    def buffer(connection: sa.Connection, job_id: str, scheduled_at: datetime) -> bool:
        """Keep a run of a ``buffer_one`` job for when its running one ends; False if one is kept already."""
        kept = connection.execute(_BUFFER, {"job_id": job_id, "scheduled_at": scheduled_at})
        return bool(kept.rowcount)

    @staticmethod
    def take_buffered(connection: sa.Connection, job_id: str) -> datetime | None:
        """The run kept for ``job_id`` (removed), or None."""
        taken = connection.execute(_TAKE_BUFFERED, {"job_id": job_id}).scalar_one_or_none()
        return None if taken is None else as_utc(taken)

    @staticmethod
    def _insert(uow: UnitOfWork, batch: list[_Rows]) -> None:
        """A failed run's failure record and its history row are always in the same transaction."""
        failures = [rows.failure for rows in batch if rows.failure is not None]
        insert_rows(uow.connection, job_failures, failures)
        insert_rows(uow.connection, job_runs, [rows.run for rows in batch])

    def history(
        self, connection: sa.Connection, job_id: str, limit: int = 100, after: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The latest runs of one job, newest first, from the run after ``after`` (the key of the previous
        page), and the key of the next page (None on the last)."""
        query = sa.select(job_runs).where(job_runs.c.job_id == job_id)
        if after is not None:
            query = query.where(job_runs.c.id < _run_key(after))
        query = query.order_by(job_runs.c.id.desc()).limit(limit + 1)
        with store_errors("run history"):
            rows = connection.execute(query).all()
        following = str(rows[limit - 1].id) if len(rows) > limit else None
        return [_run_view(row._mapping) for row in rows[:limit]], following

    def failures(
        self, connection: sa.Connection, limit: int, offset: int = 0, after: str | None = None
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
            total = counters.totals(connection)[counters.FAILURES]
            rows = connection.execute(query).all()
        following = None
        if len(rows) > limit and limit > 0:
            last = rows[limit - 1]
            following = f"{as_utc(last.failed_at).isoformat()} {last.failure_id}"  # type: ignore[union-attr]
        return [_failure_view(row._mapping) for row in rows[:limit]], total, following

    def clean_failures(self, connection: sa.Connection) -> list[str]:
        """Remove every failure record; return the removed failure ids."""
        with store_errors("failure records"):
            ids = list(connection.execute(sa.select(job_failures.c.failure_id)).scalars())
            if ids:
                connection.execute(job_failures.delete().where(job_failures.c.failure_id.in_(ids)))
        return ids

    def prune(
        self,
        connection: sa.Connection,
        max_age: timedelta,
        per_job: int,
        now: datetime | None = None,
    ) -> int:
        """Apply history retention: drop runs older than ``max_age`` and beyond ``per_job`` per job."""
        cutoff = (now or datetime.now(UTC)) - max_age
        ranked = sa.select(
            job_runs.c.id,
            sa.func.row_number()
            .over(partition_by=job_runs.c.job_id, order_by=job_runs.c.id.desc())
            .label("rank"),
        ).subquery()
        surplus = sa.select(ranked.c.id).where(ranked.c.rank > per_job)
        with store_errors("run history"):
            old = connection.execute(job_runs.delete().where(job_runs.c.finished_at < cutoff))
            extra = connection.execute(job_runs.delete().where(job_runs.c.id.in_(surplus)))
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
