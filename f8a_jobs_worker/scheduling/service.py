"""The service facade: one method per command of docs/messages.md.

Each method returns the reply's ``result`` object and raises one :class:`~f8a_jobs_worker.errors.JobsError`
subclass per error code. The messaging layer and the CLI use only this class. A database that does not answer
is :class:`~f8a_jobs_worker.errors.Unavailable`: nothing was applied and the command can be retried.

Every method takes the :class:`UnitOfWork` it is part of (``uow``); without one it makes its own. Changes and
their events are written on the unit of work's connection; what has an effect outside the database (waking
the scheduler, starting a run, pausing the in-memory scheduler) is registered to happen after its commit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from apscheduler.job import Job
from apscheduler.jobstores.base import ConflictingIdError, JobLookupError

from f8a_jobs_worker.errors import (
    FilterError,
    JobBusy,
    JobExists,
    JobNotFound,
    JobsError,
    ValidationFailed,
)
from f8a_jobs_worker.events import Event
from f8a_jobs_worker.events import model as events
from f8a_jobs_worker.filters.query import FilterRunner
from f8a_jobs_worker.filters.report import analyses_report
from f8a_jobs_worker.handlers import HandlerRegistry
from f8a_jobs_worker.logs import job_fields
from f8a_jobs_worker.moments import parse_iso
from f8a_jobs_worker.persistence import schema
from f8a_jobs_worker.persistence.backfills import BackfillStore
from f8a_jobs_worker.persistence.database import ping, store_errors
from f8a_jobs_worker.persistence.jobstore import BrokenJob
from f8a_jobs_worker.persistence.ledger import RunLedger
from f8a_jobs_worker.persistence.notify import STATE, WAKE, notify
from f8a_jobs_worker.persistence.runs import RunStore
from f8a_jobs_worker.persistence.state import SchedulerStateStore
from f8a_jobs_worker.persistence.unit_of_work import Transactions, UnitOfWork
from f8a_jobs_worker.scheduling.backfill import MAX_CONCURRENCY, run_times
from f8a_jobs_worker.scheduling.jobs import RUNNER_REF, job_view
from f8a_jobs_worker.scheduling.runtime import JOBS, SchedulerRuntime
from f8a_jobs_worker.scheduling.spec import OPTION_FIELDS, JobOptions, JobSpec

log = logging.getLogger(__name__)

JOB_TYPES = ("all", "user", "default", "failed")
DEFAULT_PAGE = 100
MAX_PAGE = 1000


class JobService:
    """Applies job and scheduler commands to the persistent scheduler."""

    def __init__(
        self,
        runtime: SchedulerRuntime,
        transactions: Transactions,
        registry: HandlerRegistry,
        runs: RunStore,
        ledger: RunLedger,
        default_grace_time: int | None,
        filters: FilterRunner | None = None,
    ) -> None:
        self.runtime = runtime
        self.transactions = transactions
        self.registry = registry
        self.runs = runs
        self.ledger = ledger
        self.state = SchedulerStateStore()
        self.default_grace_time = default_grace_time
        self.filters = filters
        self.backfills = BackfillStore()
        #: called after a backfill was created (the worker wakes its backfill driver)
        self.backfilled: Callable[[], None] = lambda: None

    @property
    def scheduler(self) -> Any:
        return self.runtime.scheduler

    @contextmanager
    def unit_of_work(self, writes: bool = True) -> Iterator[UnitOfWork]:
        """A unit of work for commands. One that writes takes the job-store lock first (the same order as
        the scheduler's pass, so the two never wait on each other's database locks) and lets APScheduler's
        calls into the store join its transaction; read-only work takes no lock."""
        lock = self.scheduler._jobstores_lock if writes else nullcontext()
        with lock, self.transactions.begin(writes) as uow:
            if not writes:
                yield uow
                return
            with self.runtime.store.bound(uow.connection):
                yield uow

    @contextmanager
    def _work(self, uow: UnitOfWork | None, writes: bool = True) -> Iterator[UnitOfWork]:
        if uow is not None:
            yield uow
            return
        with self.unit_of_work(writes) as own:
            yield own

    def wake_after(self, uow: UnitOfWork, due: datetime | None) -> None:
        """A job that falls due at ``due`` was written in an open transaction, invisible to the schedulers
        until it commits. Other replicas pass at least every poll interval, so a notification sent with
        the commit is needed only for a job due sooner (one per unit of work); this replica's loop is
        woken after the commit unless it plans a pass by then anyway. A paused job wakes nobody."""
        if due is None:
            return
        soon = datetime.now(UTC) + timedelta(seconds=self.scheduler.poll_interval)
        if due <= soon and uow.first_time("notify"):
            notify(uow.connection, WAKE)
        uow.after_commit(lambda: self.scheduler.wake_for(due))

    # -- jobs -------------------------------------------------------------------------------------------

    def create_job(
        self,
        handler: str,
        kwargs: dict[str, Any] | None = None,
        *,
        replace: bool = False,
        uow: UnitOfWork | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """``job.create``: add a job, or replace one with ``replace``; ``job_exists`` otherwise.

        ``fields`` are the other ``job.create`` arguments, checked by :meth:`JobSpec.parse`.
        """
        spec, meta = self._parse(handler, kwargs, fields)
        with self._work(uow) as work:
            existed = replace and self.runtime.store.find(work.connection, spec.job_id) is not None
            job = self.add(work, spec, meta, replace=replace)
            if existed:
                self.runs.forget(work.connection, spec.job_id)
            view = job_view(job)
            work.emit(
                Event(events.JOB_UPDATED if existed else events.JOB_CREATED, job.id, {"job": view})
            )
        return {"job": view}

    def create_jobs(
        self, requests: list[dict[str, Any]], *, uow: UnitOfWork
    ) -> list[dict[str, Any] | JobsError]:
        """Several ``job.create`` without ``replace``, in order, with set-based statements: one look for
        the ids that exist, one insert of the new rows (their events go with the unit of work's outbox
        rows). Each request gets its result or its error, as :meth:`create_job` would have given it.
        Nothing here fails after its checks except the insert, and only if another replica inserted one
        of the ids meanwhile: that fails the whole unit of work (the caller applies it again one by one)."""
        outcomes: list[dict[str, Any] | JobsError] = []
        specs: list[tuple[int, JobSpec, dict[str, Any]]] = []
        for index, request in enumerate(requests):
            fields = dict(request)
            try:
                spec, meta = self._parse(fields.pop("handler"), fields.pop("kwargs", None), fields)
            except JobsError as exc:
                outcomes.append(exc)
                continue
            outcomes.append({})
            specs.append((index, spec, meta))
        taken = self.runtime.store.existing(uow.connection, [spec.job_id for _, spec, _ in specs])
        now = datetime.now(UTC)
        jobs: list[Job] = []
        for index, spec, meta in specs:
            if spec.job_id in taken:
                outcomes[index] = _exists(spec.job_id)
                continue
            taken.add(spec.job_id)  # a second create of the id later in the batch
            job = self.runtime.new_job(spec, meta, now)
            jobs.append(job)
            view = job_view(job)
            outcomes[index] = {"job": view}
            uow.emit(Event(events.JOB_CREATED, job.id, {"job": view}))
        with store_errors("job store"):
            self.runtime.store.add_many(uow.connection, jobs)
        due = [job.next_run_time for job in jobs if job.next_run_time is not None]
        self.wake_after(uow, min(due, default=None))
        uow.after_commit(lambda: _log_added(jobs, replaced=False))
        return outcomes

    def _parse(
        self, handler: str, kwargs: dict[str, Any] | None, fields: dict[str, Any]
    ) -> tuple[JobSpec, dict[str, Any]]:
        """A ``job.create``'s job and the meta stored with it (its options); the request's errors."""
        options = JobOptions.parse(fields)
        spec = JobSpec.parse(
            self.registry,
            self.default_grace_time,
            handler=handler,
            kwargs=kwargs,
            **{k: v for k, v in fields.items() if k not in OPTION_FIELDS},
        )
        return spec, {"default": False, "cron": spec.schedule.cron, **options.meta()}

    def add(
        self, uow: UnitOfWork, spec: JobSpec, meta: dict[str, Any], replace: bool = False
    ) -> Job:
        """Store a checked job; the one place that calls APScheduler's ``add_job``."""
        options: dict[str, Any] = {}
        if spec.paused or spec.schedule.first_run:
            options["next_run_time"] = None if spec.paused else spec.schedule.first_run
        try:
            with store_errors("job store"):
                job = self.scheduler.add_job(
                    RUNNER_REF,
                    trigger=spec.schedule.trigger,
                    args=(spec.handler, meta),
                    kwargs=spec.kwargs,
                    id=spec.job_id,
                    name=spec.handler,
                    misfire_grace_time=spec.misfire_grace_time,
                    max_instances=JobOptions.of(meta).max_instances,
                    replace_existing=replace,
                    jobstore=JOBS,
                    executor=JOBS,
                    **options,
                )
        except ConflictingIdError:
            raise _exists(spec.job_id) from None
        if replace:
            self._answer_after_claims(uow)
        self.wake_after(uow, job.next_run_time)
        uow.after_commit(lambda: _log_added([job], replace))
        return job

    def get_job(self, job_id: str, *, uow: UnitOfWork | None = None) -> dict[str, Any]:
        """``job.get``; a job that cannot be restored is shown as ``broken``."""
        with self._work(uow, writes=False) as work:
            found = self.runtime.store.find(work.connection, job_id)
        if found is None:
            raise _not_found(job_id)
        return {"job": job_view(found)}

    def get_jobs(self, job_ids: list[str], *, uow: UnitOfWork) -> list[dict[str, Any] | JobsError]:
        """Several ``job.get`` answered from one query, each with its result or ``job_not_found``."""
        found = self.runtime.store.find_many(uow.connection, job_ids)
        return [
            {"job": job_view(found[job_id])} if job_id in found else _not_found(job_id)
            for job_id in job_ids
        ]

    def list_jobs(
        self,
        job_type: str = "all",
        limit: int | None = None,
        offset: int = 0,
        after: str | None = None,
        *,
        uow: UnitOfWork | None = None,
    ) -> dict[str, Any]:
        """``job.list``: a page of jobs (``limit`` defaults to 100, at most 1000), the total count, and
        ``next``, the key to pass as ``after`` for the following page (absent on the last)."""
        if job_type not in JOB_TYPES:
            raise ValidationFailed(
                f"job_type must be one of {', '.join(JOB_TYPES)}",
                [
                    {
                        "path": "$.job_type",
                        "message": f"{job_type!r} is not one of {list(JOB_TYPES)}",
                    }
                ],
            )
        # JSON Schema's integers include 1.0: a float would not do as a slice index
        page = min(DEFAULT_PAGE if limit is None else max(int(limit), 0), MAX_PAGE)
        offset = max(int(offset), 0)
        with self._work(uow, writes=False) as work:
            if job_type == "failed":
                failures, total, following = self.runs.failures(
                    work.connection, page, offset, after
                )
                return _page({"jobs": failures, "jobs_count": total}, following)
            jobs, total, following = self.runtime.store.page(
                work.connection,
                job_type,  # type: ignore[arg-type]
                page,
                offset,
                after,
            )
        return _page({"jobs": [job_view(job) for job in jobs], "jobs_count": total}, following)

    def pause_job(self, job_id: str, *, uow: UnitOfWork | None = None) -> dict[str, Any]:
        """``job.pause``: no run until resumed; the schedule is kept."""
        with self._work(uow) as work:
            job = self._change(work, job_id, self.scheduler.pause_job)
            work.emit(Event(events.JOB_PAUSED, job_id))
            self._answer_after_claims(work)
        return {"job": job_view(job)}

    def resume_job(self, job_id: str, *, uow: UnitOfWork | None = None) -> dict[str, Any]:
        """``job.resume``: the next run is computed from the schedule as of now."""
        with self._work(uow) as work:
            job = self._change(work, job_id, self.scheduler.resume_job)
            self.runs.clear_streak(work.connection, job_id)  # pause_after_failures counts afresh
            work.emit(Event(events.JOB_RESUMED, job_id))
        return {"job": job_view(job)}

    def change_jobs(
        self, command: str, job_ids: list[str], *, uow: UnitOfWork
    ) -> list[dict[str, Any] | JobsError]:
        """Several ``job.pause``, ``job.resume`` or ``job.delete`` (``command``; each job at most once),
        with set-based statements: one read of the jobs, one update or delete of their rows, one statement
        for what goes with them. Each gets the result or error :meth:`pause_job`, :meth:`resume_job` or
        :meth:`delete_job` would have given it."""
        store, now = self.runtime.store, datetime.now(UTC)
        found = store.find_many(uow.connection, job_ids)
        if command != "job.resume":
            self._answer_after_claims(uow)
        outcomes: list[dict[str, Any] | JobsError] = []
        changed: list[Job] = []
        for job_id in job_ids:
            job = found.get(job_id)
            if job is None:
                outcomes.append(_not_found(job_id))
            elif command == "job.delete":
                outcomes.append({"removed": [job_id]})
                uow.emit(Event(events.JOB_DELETED, job_id))
            elif isinstance(job, BrokenJob):
                outcomes.append(job.refusal())
            else:
                resumed = command == "job.resume"
                following = job.trigger.get_next_fire_time(None, now) if resumed else None
                if resumed and following is None:  # a schedule that ended: as resume_job does it
                    outcomes.append(self._alone(self.resume_job, job_id, uow))
                    continue
                job.next_run_time = following
                changed.append(job)
                outcomes.append({"job": job_view(job)})
                uow.emit(Event(events.JOB_RESUMED if resumed else events.JOB_PAUSED, job_id))
        with store_errors("job store"):
            if command == "job.delete":
                gone = [job_id for job_id in job_ids if job_id in found]
                store.delete_many(uow.connection, gone)
                self.runs.forget_many(uow.connection, gone)
                self.backfills.forget_jobs(uow.connection, gone)
                return outcomes
            store.update_many(uow.connection, changed)
        if command == "job.resume":  # pause_after_failures counts afresh
            self.runs.clear_streaks(uow.connection, [job.id for job in changed])
            due = [job.next_run_time for job in changed if job.next_run_time is not None]
            self.wake_after(uow, min(due, default=None))
        return outcomes

    @staticmethod
    def _alone(
        change: Callable[..., dict[str, Any]], job_id: str, uow: UnitOfWork
    ) -> dict[str, Any] | JobsError:
        try:
            return change(job_id, uow=uow)
        except JobsError as exc:
            return exc

    def backfill_job(
        self,
        job_id: str,
        start: str,
        end: str,
        concurrency: float = 1,
        *,
        uow: UnitOfWork | None = None,
    ) -> dict[str, Any]:
        """``job.backfill``: run every run the job's schedule had in ``[start, end)``, in order, at most
        ``concurrency`` at a time (paused or not; regular runs go on)."""
        begin, finish = parse_iso(start, "start"), parse_iso(end, "end")
        if not (float(concurrency).is_integer() and 1 <= concurrency <= MAX_CONCURRENCY):
            raise ValidationFailed(
                f"concurrency must be 1 to {MAX_CONCURRENCY}",
                [{"path": "$.concurrency", "message": f"expected 1 to {MAX_CONCURRENCY}"}],
            )
        with self._work(uow) as work:
            job = self._require(work, job_id)
            times = run_times(job, begin, finish, datetime.now(UTC))
            backfill_id = None
            if times:
                backfill_id = self.backfills.create(
                    work.connection, job_id, times, int(concurrency)
                )
                work.after_commit(self.backfilled)
            work.after_commit(
                lambda: log.info(
                    "job %s: backfill %s of %d runs from %s to %s, %d at a time",
                    job_id,
                    backfill_id,
                    len(times),
                    begin.isoformat(),
                    finish.isoformat(),
                    int(concurrency),
                    extra=job_fields(job_id, job.args[0]),
                )
            )
        return {
            "backfill_id": backfill_id,
            "job_id": job_id,
            "runs": len(times),
            "first": times[0].isoformat() if times else None,
            "last": times[-1].isoformat() if times else None,
        }

    def start_buffered(self, job_id: str) -> None:
        """A run of an ``overlap: buffer_one`` job ended: start the run it kept, if any. The job's row is
        locked first, so a pass that is deciding about the job either kept its run before this look or
        sees the ended run gone and starts its run itself."""
        with self._work(None) as work:
            job = self.runtime.store.find(work.connection, job_id, lock=True)
            if not isinstance(job, Job):
                self.runs.take_buffered(work.connection, job_id)
                return
            scheduled_at = self.runs.take_buffered(work.connection, job_id)
            if scheduled_at is None:
                return
            executor = self.runtime.executor
            elsewhere = self.ledger.running_elsewhere(work.connection, [job.id]).get(job.id, 0)
            if not executor.reserve(job.id, job.max_instances, elsewhere):
                # a run started meanwhile: the kept one waits for that one's end
                self.runs.buffer(work.connection, job_id, scheduled_at)
                return
            executor.start_after_commit(work, job, [scheduled_at])
            work.after_commit(
                lambda: log.info(
                    "job %s (%s): the run due at %s, kept while the previous one ran, starts now",
                    job_id,
                    job.args[0],
                    scheduled_at.isoformat(),
                    extra=job_fields(job_id, job.args[0]),
                )
            )

    def pause_for_failures(self, job_id: str, failures: int) -> None:
        """A job created with ``pause_after_failures`` failed that many times in a row: pause it and say
        why (``job.paused`` with ``reason``). A job paused or deleted meanwhile is left as it is."""
        with self._work(None) as work:
            found = self.runtime.store.find(work.connection, job_id, lock=True)
            if not isinstance(found, Job) or found.next_run_time is None:
                return
            job = self._change(work, job_id, self.scheduler.pause_job)
            reason = f"{failures} consecutive failed runs (pause_after_failures)"
            work.emit(Event(events.JOB_PAUSED, job_id, {"reason": reason}))
            work.after_commit(
                lambda: log.warning(
                    "job %s (%s) paused after %s: resume it once the cause is fixed",
                    job_id,
                    job.args[0],
                    reason,
                    extra=job_fields(job_id, job.args[0]),
                )
            )

    def delete_job(self, job_id: str, *, uow: UnitOfWork | None = None) -> dict[str, Any]:
        """``job.delete``."""
        with self._work(uow) as work:
            self._change(work, job_id, self.scheduler.remove_job)
            self._answer_after_claims(work)
            self.runs.forget(work.connection, job_id)
            self.backfills.forget_job(work.connection, job_id)
            work.emit(Event(events.JOB_DELETED, job_id))
        return {"removed": [job_id]}

    def run_job_now(self, job_id: str, *, uow: UnitOfWork | None = None) -> dict[str, Any]:
        """``job.run_now``: run the handler once the command has committed, even if paused; the schedule
        is unchanged. A run already in progress is ``job_busy`` (jobs run one instance at a time)."""
        with self._work(uow) as work:
            job = self._require(
                work, job_id, lock=True
            )  # ordered with any replica's pass firing it
            executor = self.runtime.executor
            elsewhere = self.ledger.running_elsewhere(work.connection, [job.id]).get(job.id, 0)
            if not executor.reserve(job.id, job.max_instances, elsewhere):
                raise JobBusy(f"job {job_id!r} is running now; try again when it has finished")
            executor.start_after_commit(work, job, [datetime.now(UTC)])
            work.after_commit(
                lambda: log.info(
                    "job %s (%s) submitted to run now",
                    job_id,
                    job.args[0],
                    extra=job_fields(job_id, job.args[0]),
                )
            )
        return {"job": job_view(job)}

    def clean_failed(self, *, uow: UnitOfWork | None = None) -> dict[str, Any]:
        """``jobs.clean_failed``: remove every failure record."""
        with self._work(uow) as work:
            removed = self.runs.clean_failures(work.connection)
        log.info("removed %d failure records", len(removed))
        return {"removed": removed}

    def job_history(
        self,
        job_id: str,
        limit: int = 100,
        after: str | None = None,
        *,
        uow: UnitOfWork | None = None,
    ) -> dict[str, Any]:
        """The latest run outcomes of a job, newest first (kept within the history retention), and
        ``next`` for the older ones (absent on the last page)."""
        with self._work(uow, writes=False) as work:
            runs, following = self.runs.history(
                work.connection, job_id, min(max(int(limit), 1), MAX_PAGE), after
            )
        return _page({"runs": runs}, following)

    # -- $filter queries -------------------------------------------------------------------------------

    def _filter_runner(self) -> FilterRunner:
        if self.filters is None:
            raise FilterError("no analytics database is configured for $filter queries")
        return self.filters

    def filter_sql(self, query: Any, *, uow: UnitOfWork | None = None) -> dict[str, Any]:
        """``filter.sql``: the SQL of a ``$filter`` query and its bound parameters."""
        return self._filter_runner().sql(query, path="$.$filter")

    def filter_expand(
        self,
        query: Any,
        limit: int | None = None,
        siblings: dict[str, Any] | None = None,
        *,
        uow: UnitOfWork | None = None,
    ) -> dict[str, Any]:
        """``filter.expand``: the rows a ``$filter`` query matches (capped, see FilterRunner.expand), each
        with the ``siblings`` merged in as a flow argument's are."""
        return self._filter_runner().expand(query, limit, path="$.$filter", siblings=siblings)

    def analyses_report(
        self,
        ecosystem: str,
        from_date: str | None = None,
        to_date: str | None = None,
        *,
        uow: UnitOfWork | None = None,
    ) -> dict[str, Any]:
        """``report.analyses``: counts of an ecosystem's analyses, as the original's analyses report."""
        return analyses_report(self._filter_runner(), ecosystem, from_date, to_date)

    # -- the whole scheduler ----------------------------------------------------------------------------

    def scheduler_state(self, *, uow: UnitOfWork | None = None) -> dict[str, Any]:
        """``scheduler.state``: running or paused, runs in progress, the outbox's backlog and the replicas
        sharing the store (this one marked)."""
        replicas = self.runtime.replicas
        with self._work(uow, writes=False) as work:
            paused = self.state.is_paused(work.connection)
            pending, oldest = work.outbox.backlog(work.connection, datetime.now(UTC))
            running = self.ledger.running(work.connection)
            members = replicas.all(work.connection)
            now = replicas.now(work.connection)
            revision = schema.current(work.connection)
        return {
            "state": "paused" if paused else "running",
            "runs_in_progress": running,
            "outbox": {"pending": pending, "oldest_age_s": round(oldest, 3)},
            "replica": replicas.replica_id,
            "replicas": [view.to_dict(runs, now, replicas.replica_id) for view, runs in members],
            "schema": {"store": revision, "release": schema.head()},
        }

    def pause_scheduler(self, *, uow: UnitOfWork | None = None) -> dict[str, Any]:
        """``scheduler.pause``: no job fires until resumed, across restarts; commands still apply."""
        with self._work(uow) as work:
            self.state.set_paused(work.connection, True)
            notify(work.connection, STATE)
            work.emit(Event(events.SCHEDULER_PAUSED))
            work.after_commit(self.scheduler.pause)
            self._answer_after_claims(work)
            work.after_commit(
                lambda: log.warning("scheduler paused: no job will fire until scheduler.resume")
            )
        return {"state": "paused"}

    def resume_scheduler(self, *, uow: UnitOfWork | None = None) -> dict[str, Any]:
        """``scheduler.resume``."""
        with self._work(uow) as work:
            self.state.set_paused(work.connection, False)
            notify(work.connection, STATE)
            work.emit(Event(events.SCHEDULER_RESUMED))
            work.after_commit(self.scheduler.resume)
            work.after_commit(lambda: log.info("scheduler resumed"))
        return {"state": "running"}

    def health(self) -> dict[str, Any]:
        """Liveness (the scheduler thread is there) and readiness (the job store answers)."""
        try:
            ping(self.transactions.engine)
            store = "ok"
        except Exception as exc:
            store = str(exc)
        live = self.runtime.alive
        return {"live": live, "ready": live and store == "ok", "store": store}

    # -- helpers -----------------------------------------------------------------------------------------

    def _require(self, uow: UnitOfWork, job_id: str, lock: bool = False) -> Job:
        found = self.runtime.store.find(uow.connection, job_id, lock)
        if found is None:
            raise _not_found(job_id)
        if isinstance(found, BrokenJob):
            raise found.refusal()
        return found

    def _answer_after_claims(self, uow: UnitOfWork) -> None:
        """A command that stops runs is answered only once the runs claimed ahead before it committed are
        due (``runtime.FIRE_AHEAD``, at most 50 ms): no run due after its reply fires, on any replica."""
        ahead = self.runtime.scheduler.fire_ahead
        if ahead > 0 and uow.first_time("answer after claims"):
            uow.after_commit(partial(time.sleep, ahead))

    def _change(self, uow: UnitOfWork, job_id: str, action: Any) -> Any:
        try:
            with store_errors("job store"):
                changed = action(job_id, jobstore=JOBS)
        except JobLookupError:
            raise _not_found(job_id) from None
        self.wake_after(uow, getattr(changed, "next_run_time", None))  # (a removal returns None)
        return changed


def _not_found(job_id: str) -> JobNotFound:
    return JobNotFound(f"no job {job_id!r}")


def _exists(job_id: str) -> JobExists:
    return JobExists(f"job {job_id!r} exists; send replace: true to overwrite it")


def _log_added(jobs: list[Job], replaced: bool) -> None:
    for job in jobs:
        log.info(
            "job %s (%s) %s: next run %s",
            job.id,
            job.name,
            "replaced" if replaced else "added",
            getattr(job, "next_run_time", None),
            extra=job_fields(job.id, job.name),
        )


def _page(result: dict[str, Any], following: str | None) -> dict[str, Any]:
    """A listing's result, with ``next`` when there is a following page."""
    if following is not None:
        result["next"] = following
    return result
