"""APScheduler 3's SQLAlchemy job store, extended for a job service.

Two columns beside APScheduler's pickled state (``handler``, ``is_default``) let ``job.list`` page and filter in
SQL instead of unpickling every job. A job whose state cannot be restored (a deploy renamed what it names) is
never deleted, as the stock store does: it is shown as broken, and when it falls due it is marked broken
(``broken`` holds why, ``next_run_time`` is cleared) and reported once, so it neither runs, nor hides healthy
due jobs, nor makes the scheduler spin. A later start that can restore it again schedules it again.

Several replicas share the table: a pass claims the due rows it reads (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL), so the rows another replica's pass holds are skipped rather than fired twice (see
:mod:`f8a_jobs_worker.scheduling.runtime`).
"""

from __future__ import annotations

import logging
import pickle
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from apscheduler.job import Job
from apscheduler.jobstores.base import ConflictingIdError, JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.util import datetime_to_utc_timestamp, utc_timestamp_to_datetime
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError

from f8a_jobs_worker.errors import JobBroken
from f8a_jobs_worker.persistence import counts as counters
from f8a_jobs_worker.persistence.bulk import insert_rows
from f8a_jobs_worker.persistence.tables import jobs, run_ledger

log = logging.getLogger(__name__)

JobType = Literal["all", "user", "default"]


@dataclass(frozen=True)
class BrokenJob:
    """A stored job whose state cannot be restored, as far as its columns tell."""

    job_id: str
    handler: str
    default: bool
    reason: str

    def refusal(self) -> JobBroken:
        """The error for what a broken job cannot do: be paused, resumed or run."""
        return JobBroken(
            f"job {self.job_id!r} is stored but cannot be restored ({self.reason}); delete it, or "
            "create it again with replace: true",
            [{"path": "$.job_id", "message": "the stored job cannot be restored"}],
        )


#: due jobs handed to the scheduler per pass; each pass commits once and holds the job-store lock meanwhile
DUE_JOBS_PER_PASS = 100


class JobStore(SQLAlchemyJobStore):  # type: ignore[misc]
    """The ``f8a_jobs`` table: APScheduler's columns plus ``handler`` and ``is_default``."""

    def __init__(
        self,
        engine: sa.Engine,
        tablename: str = "f8a_jobs",
        due_per_pass: int = DUE_JOBS_PER_PASS,
        replica: str = "",
    ) -> None:
        """``replica``: the replica whose passes claim due jobs here; each claimed job comes with how many of
        its runs are in progress on the others (for ``max_instances`` across replicas)."""
        super().__init__(engine=engine, tablename=tablename, metadata=sa.MetaData())
        self.due_per_pass = due_per_pass
        self.replica = replica
        self.jobs_t = jobs
        self._columns = [
            self.jobs_t.c[name] for name in ("id", "job_state", "handler", "is_default")
        ]
        #: due jobs claimed by the last pass (0 while due rows are held by other replicas' passes)
        self.claimed = 0
        #: called in each pass with the runs in progress on other replicas of the due jobs it claimed
        self.on_due: Callable[[dict[str, int]], None] | None = None
        self._found_broken: list[BrokenJob] = []
        self._found_lock = threading.Lock()
        self._read_error: Exception | None = None
        self._bound: tuple[int, sa.Connection] | None = None
        #: one-shot jobs removed in the pass in progress, to delete in one statement
        self._deferred: list[str] | None = None
        # built once: the scheduler updates or removes every job it fires, and SQLAlchemy then reuses the
        # compiled statement instead of building a cache key per call
        self._update = self.jobs_t.update().where(self.jobs_t.c.id == sa.bindparam("job_id"))
        self._delete = self.jobs_t.delete().where(self.jobs_t.c.id == sa.bindparam("job_id"))
        ids: sa.BindParameter[list[str]] = sa.bindparam("ids", expanding=True)
        self._find_many = sa.select(*self._columns).where(self.jobs_t.c.id.in_(ids))
        self._find = sa.select(*self._columns).where(self.jobs_t.c.id == sa.bindparam("id"))
        self._find_locked = self._find.with_for_update()
        self._existing = sa.select(self.jobs_t.c.id).where(self.jobs_t.c.id.in_(ids))
        self._insert = self.jobs_t.insert()
        self._delete_many = self.jobs_t.delete().where(self.jobs_t.c.id.in_(ids))
        next_run = self.jobs_t.c.next_run_time
        self._next_run = (
            sa.select(next_run).where(next_run.is_not(None)).order_by(next_run).limit(1)
        )
        elsewhere = (
            sa.select(sa.func.count())
            .where(run_ledger.c.job_id == self.jobs_t.c.id, run_ledger.c.worker != self.replica)
            .scalar_subquery()
            .label("elsewhere")
        )
        self._claim = (
            sa.select(*self._columns, elsewhere)
            .where(next_run <= sa.bindparam("now"))
            .order_by(next_run)
            .limit(sa.bindparam("wanted"))
            .with_for_update(skip_locked=True)
        )
        # a data-modifying WITH runs whether or not the query reads it, and the query sees the rows as they
        # were before it: hence the ids left out of the minimum too
        fired = sa.bindparam("ids", type_=postgresql.ARRAY(sa.Unicode))
        gone = self.jobs_t.delete().where(self.jobs_t.c.id == sa.any_(fired)).cte("gone")
        self._remove_and_next = (
            sa.select(sa.func.min(next_run))
            .where(next_run.is_not(None), self.jobs_t.c.id != sa.all_(fired))
            .add_cte(gone)
        )
        self._claim_more = self._claim.where(
            self.jobs_t.c.id.not_in(sa.bindparam("taken", expanding=True))
        )

    def _row(self, job: Job) -> dict[str, Any]:
        handler, meta = job.args[0], job.args[1]
        return {
            "next_run_time": datetime_to_utc_timestamp(job.next_run_time),
            "job_state": pickle.dumps(job.__getstate__(), self.pickle_protocol),
            "handler": handler,
            "is_default": bool(meta.get("default")),
            "broken": None,
        }

    def shutdown(self) -> None:
        """APScheduler's store disposes of the engine here; the worker owns it and disposes of it last, once
        the outbox relay (which outlives the scheduler) has stopped too."""

    @contextmanager
    def bound(self, connection: sa.Connection) -> Iterator[None]:
        """Let APScheduler's calls into this store, from this thread, use ``connection`` (a unit of work's)
        while the block runs. Only a holder of the scheduler's job-store lock binds, so one at a time."""
        previous, self._bound = self._bound, (threading.get_ident(), connection)
        try:
            yield
        finally:
            self._bound = previous

    @contextmanager
    def _connection(self) -> Iterator[sa.Connection]:
        """The connection bound by this thread's unit of work, else a transaction of its own."""
        bound = self._bound
        if bound is not None and self.bound_here():
            yield bound[1]
            return
        with self.engine.begin() as connection:
            yield connection

    def find(
        self, connection: sa.Connection, job_id: str, lock: bool = False
    ) -> Job | BrokenJob | None:
        """The job, what is known of it if it cannot be restored, or None. ``lock``: its row locked until
        the transaction ends (waiting for a pass of any replica that holds it)."""
        row = connection.execute(self._find_locked if lock else self._find, {"id": job_id}).first()
        return self._restore_row(row) if row is not None else None

    def find_many(
        self, connection: sa.Connection, job_ids: list[str]
    ) -> dict[str, Job | BrokenJob]:
        """The stored ones of ``job_ids`` (one query for a batch of ``job.get``)."""
        rows = connection.execute(self._find_many, {"ids": list(set(job_ids))}).all()
        return {row.id: self._restore_row(row) for row in rows}

    def existing(self, connection: sa.Connection, job_ids: list[str]) -> set[str]:
        """Which of ``job_ids`` are stored (one query for a batch of ``job.create``)."""
        return set(connection.execute(self._existing, {"ids": list(set(job_ids))}).scalars())

    def add_many(self, connection: sa.Connection, jobs: list[Job]) -> None:
        """Insert new jobs with one statement, in the rows APScheduler's own store reads. The caller has
        checked that none exists; a concurrent insert of the same id fails the statement (and so its
        transaction), never overwrites."""
        if jobs:
            insert_rows(connection, self.jobs_t, [{"id": job.id, **self._row(job)} for job in jobs])

    def update_many(self, connection: sa.Connection, jobs: list[Job]) -> None:
        """Write changed jobs back with one statement (a batch of ``job.pause``/``job.resume``)."""
        if jobs:
            connection.execute(self._update, [{"job_id": job.id, **self._row(job)} for job in jobs])

    def delete_many(self, connection: sa.Connection, job_ids: list[str]) -> None:
        """Delete jobs with one statement (a batch of ``job.delete``)."""
        if job_ids:
            connection.execute(self._delete_many, {"ids": job_ids})

    def lookup_job(self, job_id: str) -> Job | None:
        """APScheduler's lookup: :class:`JobBroken` for a job that cannot be restored."""
        with self._connection() as connection:
            found = self.find(connection, job_id)
        if isinstance(found, BrokenJob):
            raise found.refusal()
        return found

    def add_job(self, job: Job) -> None:
        # Checked first, not caught from the INSERT: a failed statement would abort a shared transaction.
        with self._connection() as connection:
            if self.existing(connection, [job.id]):
                raise ConflictingIdError(job.id)
            try:
                connection.execute(self._insert, {"id": job.id, **self._row(job)})
            except IntegrityError:
                raise ConflictingIdError(job.id) from None

    def update_job(self, job: Job) -> None:
        with self._connection() as connection:
            if connection.execute(self._update, {"job_id": job.id, **self._row(job)}).rowcount == 0:
                raise JobLookupError(job.id)

    def remove_job(self, job_id: str) -> None:
        if self._deferred is not None and self.bound_here():
            self._deferred.append(job_id)  # a one-shot job the pass fired: removed with the others
            return
        with self._connection() as connection:
            if connection.execute(self._delete, {"job_id": job_id}).rowcount == 0:
                raise JobLookupError(job_id)

    @contextmanager
    def removing_together(self) -> Iterator[None]:
        """Within a scheduler pass: the one-shot jobs it fired are removed by one statement (before the
        next run time is read, and at the end), not one each."""
        self._deferred = []
        try:
            yield
            self._remove_deferred()
        finally:
            self._deferred = None

    def _remove_deferred(self) -> None:
        ids = self._deferred
        if ids:
            self._deferred = []
            with self._connection() as connection:
                self.delete_many(connection, ids)

    def bound_here(self) -> bool:
        """Whether this thread is inside a unit of work bound to the store (a command's or a pass's)."""
        bound = self._bound
        return bound is not None and bound[0] == threading.get_ident()

    def remove_all_jobs(self) -> None:
        with self._connection() as connection:
            connection.execute(self.jobs_t.delete())

    def raise_read_error(self) -> None:
        """Raise what :meth:`get_due_jobs` met, if anything: APScheduler would only log it."""
        error, self._read_error = self._read_error, None
        if error is not None:
            raise error

    def get_due_jobs(self, now: datetime) -> list[Job]:
        try:
            return self._due_jobs(now)
        except Exception as exc:
            self._read_error = exc
            return []

    def _due_jobs(self, now: datetime) -> list[Job]:
        jobs = self._claim_due(now)
        self.claimed = len(jobs)
        return jobs

    def _claim_due(self, now: datetime) -> list[Job]:
        """The earliest due jobs, at most ``due_per_pass``: the scheduler's pass holds the job-store lock,
        so a capped pass lets commands in between passes during a large catch-up (the next pass starts
        at once, since the next run time is still due). Due rows that cannot be restored are marked broken
        in the pass's transaction (see :meth:`take_broken`) and their places filled with healthy jobs."""
        jobs: list[Job] = []
        elsewhere: dict[str, int] = {}
        while len(jobs) < self.due_per_pass:
            wanted = self.due_per_pass - len(jobs)
            # broken rows just left the due set; the healthy ones taken so far have not
            query, values = self._claim, {"now": datetime_to_utc_timestamp(now), "wanted": wanted}
            if jobs:
                query, values = self._claim_more, {**values, "taken": [job.id for job in jobs]}
            with self._connection() as connection:
                rows = connection.execute(query, values).all()
                broken = []
                for row in rows:
                    restored = self._restore_row(row)
                    if isinstance(restored, BrokenJob):
                        broken.append(restored)
                        continue
                    jobs.append(restored)
                    if row.elsewhere:
                        elsewhere[row.id] = int(row.elsewhere)
                self._mark_broken(connection, broken)
            if not broken or len(rows) < wanted:
                break
        if self.on_due is not None:
            self.on_due(elsewhere)
        return jobs

    def _mark_broken(self, connection: sa.Connection, broken: list[BrokenJob]) -> None:
        """Take broken due rows out of the schedule, keeping them (and their state) for a later fix."""
        for job in broken:
            marked = connection.execute(
                self.jobs_t.update()
                .where(self.jobs_t.c.id == job.job_id, self.jobs_t.c.broken.is_(None))
                .values(broken=job.reason, next_run_time=None)
            )
            if marked.rowcount:
                with self._found_lock:
                    self._found_broken.append(job)

    def take_broken(self) -> list[BrokenJob]:
        """The jobs marked broken since the last call: to report once their marks are committed."""
        with self._found_lock:
            found, self._found_broken = self._found_broken, []
        return found

    def restore_repaired(self, connection: sa.Connection) -> list[str]:
        """Jobs marked broken that can be restored now (a fix was deployed): scheduled again at the next
        run time their state holds (a run missed meanwhile is handled like any misfire)."""
        query = sa.select(*self._columns).where(self.jobs_t.c.broken.is_not(None))
        repaired = []
        for row in connection.execute(query).all():
            restored = self._restore_row(row)
            if isinstance(restored, BrokenJob):
                continue
            connection.execute(self._update, {"job_id": restored.id, **self._row(restored)})
            repaired.append(restored.id)
        return repaired

    def get_next_run_time(self) -> datetime | None:
        """The earliest next run time; on PostgreSQL the one-shot jobs the pass fired are removed by the
        same statement (one round trip where a pass has many)."""
        ids = self._deferred
        with self._connection() as connection:
            if ids and connection.dialect.name == "postgresql":
                self._deferred = []
                found = connection.execute(self._remove_and_next, {"ids": ids}).scalar()
            else:
                self._remove_deferred()
                found = connection.execute(self._next_run).scalar()
        moment: datetime | None = utc_timestamp_to_datetime(found)
        return moment

    def _get_jobs(self, *conditions: Any, limit: int | None = None) -> list[Job]:
        """APScheduler's listing (``get_all_jobs``): the jobs that can be restored."""
        query = sa.select(*self._columns).order_by(self.jobs_t.c.next_run_time).limit(limit)
        if conditions:
            query = query.where(sa.and_(*conditions))
        with self._connection() as connection:
            rows = connection.execute(query).all()
        return [job for job in map(self._restore_row, rows) if isinstance(job, Job)]

    def _restore_row(self, row: Any) -> Job | BrokenJob:
        try:
            job: Job = self._reconstitute_job(row.job_state)
            return job
        except Exception as exc:  # whatever unpickling an old state raises
            reason = f"{type(exc).__name__}: {exc}"[:500]
            return BrokenJob(row.id, row.handler, bool(row.is_default), reason)

    @staticmethod
    def _count(connection: sa.Connection, job_type: JobType) -> int:
        """How many jobs of ``job_type`` there are, from the counters the triggers keep (no scan)."""
        found = counters.totals(connection)
        user, default = found[counters.USER_JOBS], found[counters.DEFAULT_JOBS]
        return {"all": user + default, "user": user, "default": default}[job_type]

    def _type_filter(self, job_type: JobType) -> list[Any]:
        if job_type == "user":
            return [self.jobs_t.c.is_default.is_(False)]
        if job_type == "default":
            return [self.jobs_t.c.is_default.is_(True)]
        return []

    def page(
        self,
        connection: sa.Connection,
        job_type: JobType,
        limit: int,
        offset: int = 0,
        after: str | None = None,
    ) -> tuple[list[Job | BrokenJob], int, str | None]:
        """One page of jobs ordered by id (broken ones included), how many jobs of that type there are in
        all, and the key of the next page (None on the last). ``after`` (the previous page's key) reads
        the next page through the primary key's index, however deep; ``offset`` walks every row before."""
        conditions = self._type_filter(job_type)
        query = sa.select(*self._columns).where(*conditions)
        if after is not None:
            query = query.where(self.jobs_t.c.id > after)
        query = query.order_by(self.jobs_t.c.id).limit(limit + 1).offset(offset)
        total = self._count(connection, job_type)
        rows = connection.execute(query).all()
        following = rows[limit - 1].id if len(rows) > limit and limit > 0 else None
        return [self._restore_row(row) for row in rows[:limit]], total, following
