"""APScheduler 3's SQLAlchemy job store, extended for a job service.

Two columns beside APScheduler's pickled state (``handler``, ``is_default``) let ``job.list`` page and filter in
SQL instead of unpickling every job. A job whose state cannot be restored is logged and skipped, never deleted:
the stock store deletes such rows, which would turn one bad deploy into lost jobs.

Seam for several replicas: this store is where an active scheduler would claim due jobs
(``SELECT ... FOR UPDATE SKIP LOCKED``); today one worker owns the scheduler (see docs/architecture.md).
"""

from __future__ import annotations

import pickle
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from apscheduler.job import Job
from apscheduler.jobstores.base import ConflictingIdError, JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.util import datetime_to_utc_timestamp, utc_timestamp_to_datetime
from sqlalchemy.exc import IntegrityError

from f8a_jobs_worker.persistence.database import connect

JobType = Literal["all", "user", "default"]

#: due jobs handed to the scheduler per pass; each pass commits once and holds the job-store lock meanwhile
DUE_JOBS_PER_PASS = 100


class JobStore(SQLAlchemyJobStore):  # type: ignore[misc]
    """The ``f8a_jobs`` table: APScheduler's columns plus ``handler`` and ``is_default``."""

    def __init__(
        self, engine: sa.Engine, tablename: str = "f8a_jobs", due_per_pass: int = DUE_JOBS_PER_PASS
    ) -> None:
        super().__init__(engine=engine, tablename=tablename, metadata=sa.MetaData())
        self.due_per_pass = due_per_pass
        self.jobs_t = sa.Table(
            tablename,
            sa.MetaData(),
            sa.Column("id", sa.Unicode(191), primary_key=True),
            sa.Column("next_run_time", sa.Float(25), index=True),
            sa.Column("job_state", sa.LargeBinary, nullable=False),
            sa.Column("handler", sa.Unicode(191), nullable=False),
            sa.Column("is_default", sa.Boolean, nullable=False, default=False),
        )
        # built once: the scheduler updates or removes every job it fires, and SQLAlchemy then reuses the
        # compiled statement instead of building a cache key per call
        self._update = self.jobs_t.update().where(self.jobs_t.c.id == sa.bindparam("job_id"))
        self._delete = self.jobs_t.delete().where(self.jobs_t.c.id == sa.bindparam("job_id"))

    def _row(self, job: Job) -> dict[str, Any]:
        handler, meta = job.args[0], job.args[1]
        return {
            "next_run_time": datetime_to_utc_timestamp(job.next_run_time),
            "job_state": pickle.dumps(job.__getstate__(), self.pickle_protocol),
            "handler": handler,
            "is_default": bool(meta.get("default")),
        }

    def lookup_job(self, job_id: str) -> Job | None:
        query = sa.select(self.jobs_t.c.job_state).where(self.jobs_t.c.id == job_id)
        with connect(self.engine) as connection:
            state = connection.execute(query).scalar()
        return self._reconstitute_job(state) if state else None

    def add_job(self, job: Job) -> None:
        # Checked first, not caught from the INSERT: a failed statement would abort a shared transaction.
        exists = sa.select(self.jobs_t.c.id).where(self.jobs_t.c.id == job.id)
        with connect(self.engine) as connection:
            if connection.execute(exists).first() is not None:
                raise ConflictingIdError(job.id)
            try:
                connection.execute(self.jobs_t.insert().values(id=job.id, **self._row(job)))
            except IntegrityError:
                raise ConflictingIdError(job.id) from None

    def update_job(self, job: Job) -> None:
        with connect(self.engine) as connection:
            if connection.execute(self._update, {"job_id": job.id, **self._row(job)}).rowcount == 0:
                raise JobLookupError(job.id)

    def remove_job(self, job_id: str) -> None:
        with connect(self.engine) as connection:
            if connection.execute(self._delete, {"job_id": job_id}).rowcount == 0:
                raise JobLookupError(job_id)

    def remove_all_jobs(self) -> None:
        with connect(self.engine) as connection:
            connection.execute(self.jobs_t.delete())

    def get_due_jobs(self, now: datetime) -> list[Job]:
        """The earliest due jobs, at most ``due_per_pass``: the scheduler's pass holds the job-store lock,
        so a capped pass lets commands in between passes during a large catch-up (the next pass starts
        at once, since the next run time is still due)."""
        due = self.jobs_t.c.next_run_time <= datetime_to_utc_timestamp(now)
        return self._get_jobs(due, limit=self.due_per_pass)

    def get_next_run_time(self) -> datetime | None:
        query = (
            sa.select(self.jobs_t.c.next_run_time)
            .where(self.jobs_t.c.next_run_time.is_not(None))
            .order_by(self.jobs_t.c.next_run_time)
            .limit(1)
        )
        with connect(self.engine) as connection:
            moment: datetime | None = utc_timestamp_to_datetime(connection.execute(query).scalar())
        return moment

    def _get_jobs(self, *conditions: Any, limit: int | None = None) -> list[Job]:
        query = (
            sa.select(self.jobs_t.c.id, self.jobs_t.c.job_state)
            .order_by(self.jobs_t.c.next_run_time)
            .limit(limit)
        )
        if conditions:
            query = query.where(sa.and_(*conditions))
        with connect(self.engine) as connection:
            return self._restore(connection.execute(query))

    def _restore(self, rows: Any) -> list[Job]:
        jobs = []
        for row in rows:
            try:
                jobs.append(self._reconstitute_job(row.job_state))
            except Exception:
                self._logger.exception(
                    "cannot restore job %r; it stays stored but will not run", row.id
                )
        return jobs

    def _type_filter(self, job_type: JobType) -> list[Any]:
        if job_type == "user":
            return [self.jobs_t.c.is_default.is_(False)]
        if job_type == "default":
            return [self.jobs_t.c.is_default.is_(True)]
        return []

    def page(self, job_type: JobType, limit: int | None, offset: int) -> tuple[list[Job], int]:
        """One page of jobs ordered by id, and how many jobs of that type there are in all."""
        conditions = self._type_filter(job_type)
        query = (
            sa.select(self.jobs_t.c.id, self.jobs_t.c.job_state)
            .where(*conditions)
            .order_by(self.jobs_t.c.id)
            .limit(limit)
            .offset(offset)
        )
        count = sa.select(sa.func.count()).select_from(self.jobs_t).where(*conditions)
        with connect(self.engine) as connection:
            total = connection.execute(count).scalar_one()
            return self._restore(connection.execute(query)), total
