"""The service facade: one method per command of docs/messages.md.

Each method returns the reply's ``result`` object and raises one :class:`~f8a_jobs_worker.errors.JobsError`
subclass per error code. The messaging layer and the CLI use only this class. A database that does not answer
is :class:`~f8a_jobs_worker.errors.Unavailable`: nothing was applied and the command can be retried.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from apscheduler.executors.base import MaxInstancesReachedError
from apscheduler.job import Job
from apscheduler.jobstores.base import ConflictingIdError, JobLookupError

from f8a_jobs_worker.errors import FilterError, JobBusy, JobExists, JobNotFound, ValidationFailed
from f8a_jobs_worker.events import Event, EventSink
from f8a_jobs_worker.events import model as events
from f8a_jobs_worker.filters.query import FilterRunner
from f8a_jobs_worker.handlers import HandlerRegistry
from f8a_jobs_worker.persistence.database import ping, store_errors, transaction
from f8a_jobs_worker.persistence.runs import RunStore
from f8a_jobs_worker.persistence.state import SchedulerStateStore
from f8a_jobs_worker.scheduling.jobs import RUNNER_REF, job_view
from f8a_jobs_worker.scheduling.runtime import JOBS, SchedulerRuntime
from f8a_jobs_worker.scheduling.spec import JobSpec

log = logging.getLogger(__name__)

JOB_TYPES = ("all", "user", "default", "failed")

_deferred: ContextVar[list[Event] | None] = ContextVar("f8a_jobs_deferred_events", default=None)
DEFAULT_PAGE = 100
MAX_PAGE = 1000


class JobService:
    """Applies job and scheduler commands to the persistent scheduler.

    ``sink`` must not raise; the worker hands in a :class:`~f8a_jobs_worker.events.SafeEventSink`.
    """

    def __init__(
        self,
        runtime: SchedulerRuntime,
        registry: HandlerRegistry,
        runs: RunStore,
        state: SchedulerStateStore,
        sink: EventSink,
        default_grace_time: int | None,
        filters: FilterRunner | None = None,
    ) -> None:
        self.runtime = runtime
        self.registry = registry
        self.runs = runs
        self.state = state
        self.sink = sink
        self.default_grace_time = default_grace_time
        self.filters = filters

    @property
    def scheduler(self) -> Any:
        return self.runtime.scheduler

    @contextmanager
    def unit_of_work(self, wake: bool = True) -> Iterator[sa.Connection]:
        """Make the commands applied inside one transaction with whatever the caller writes to the
        connection (a stored reply); their events go out only after the commit.

        The job-store lock is taken before the transaction, the same order as the scheduler's own loop, so
        the two never wait on each other's database locks. After the commit the scheduler is woken up
        (unless ``wake`` is False: read-only work), since a job written in an open transaction was
        invisible to it.
        """
        pending: list[Event] = []
        token = _deferred.set(pending)
        try:
            with (
                self.scheduler._jobstores_lock,
                store_errors("job store"),
                transaction(self.runtime.store.engine) as connection,
            ):
                yield connection
        finally:
            _deferred.reset(token)
        if wake:
            self.scheduler.wakeup()
        self.sink.emit_many(pending)

    @contextmanager
    def isolated(self, connection: sa.Connection, savepoint: bool = True) -> Iterator[None]:
        """One command of a batch inside :meth:`unit_of_work`: if it raises, its writes (a savepoint) and
        its deferred events are undone, and the batch's other commands are not."""
        if not savepoint:
            yield
            return
        pending = _deferred.get()
        mark = len(pending) if pending is not None else 0
        try:
            with connection.begin_nested():
                yield
        except BaseException:
            if pending is not None:
                del pending[mark:]
            raise

    # -- jobs -------------------------------------------------------------------------------------------

    def create_job(
        self,
        handler: str,
        kwargs: dict[str, Any] | None = None,
        *,
        replace: bool = False,
        **fields: Any,
    ) -> dict[str, Any]:
        """``job.create``: add a job, or replace one with ``replace``; ``job_exists`` otherwise.

        ``fields`` are the other ``job.create`` arguments, checked by :meth:`JobSpec.parse`.
        """
        spec = JobSpec.parse(
            self.registry, self.default_grace_time, handler=handler, kwargs=kwargs, **fields
        )
        existed = replace and self.runtime.store.find(spec.job_id) is not None
        job = self.add(spec, meta={"default": False, "cron": spec.schedule.cron}, replace=replace)
        view = job_view(job)
        self.emit(events.JOB_UPDATED if existed else events.JOB_CREATED, job.id, job=view)
        return {"job": view}

    def add(self, spec: JobSpec, meta: dict[str, Any], replace: bool = False) -> Job:
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
                    replace_existing=replace,
                    jobstore=JOBS,
                    executor=JOBS,
                    **options,
                )
        except ConflictingIdError:
            raise JobExists(
                f"job {spec.job_id!r} exists; send replace: true to overwrite it"
            ) from None
        log.info(
            "job %s (%s) %s: next run %s",
            job.id,
            spec.handler,
            "replaced" if replace else "added",
            getattr(job, "next_run_time", None),
        )
        return job

    def get_job(self, job_id: str) -> dict[str, Any]:
        """``job.get``; a job that cannot be restored is shown as ``broken``."""
        with store_errors("job store"):
            found = self.runtime.store.find(job_id)
        if found is None:
            raise JobNotFound(f"no job {job_id!r}")
        return {"job": job_view(found)}

    def list_jobs(
        self, job_type: str = "all", limit: int | None = None, offset: int = 0
    ) -> dict[str, Any]:
        """``job.list``: a page of jobs (``limit`` defaults to 100, at most 1000) and the total count."""
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
        page = min(DEFAULT_PAGE if limit is None else max(limit, 0), MAX_PAGE)
        offset = max(offset, 0)
        if job_type == "failed":
            failures, total = self.runs.failures(page, offset)
            return {"jobs": failures, "jobs_count": total}
        with store_errors("job store"):
            jobs, total = self.runtime.store.page(job_type, page, offset)  # type: ignore[arg-type]
        return {"jobs": [job_view(job) for job in jobs], "jobs_count": total}

    def pause_job(self, job_id: str) -> dict[str, Any]:
        """``job.pause``: no run until resumed; the schedule is kept."""
        job = self._change(job_id, self.scheduler.pause_job)
        self.emit(events.JOB_PAUSED, job_id)
        return {"job": job_view(job)}

    def resume_job(self, job_id: str) -> dict[str, Any]:
        """``job.resume``: the next run is computed from the schedule as of now."""
        job = self._change(job_id, self.scheduler.resume_job)
        self.emit(events.JOB_RESUMED, job_id)
        return {"job": job_view(job)}

    def delete_job(self, job_id: str) -> dict[str, Any]:
        """``job.delete``."""
        self._change(job_id, self.scheduler.remove_job)
        self.emit(events.JOB_DELETED, job_id)
        return {"removed": [job_id]}

    def run_job_now(self, job_id: str) -> dict[str, Any]:
        """``job.run_now``: run the handler at once, even if paused; the schedule is unchanged."""
        job = self._require(job_id)
        try:
            self.runtime.executor.submit_job(job, [datetime.now(UTC)])
        except MaxInstancesReachedError:
            raise JobBusy(
                f"job {job_id!r} is running now; try again when it has finished"
            ) from None
        log.info("job %s (%s) submitted to run now", job_id, job.args[0])
        return {"job": job_view(job)}

    def clean_failed(self) -> dict[str, Any]:
        """``jobs.clean_failed``: remove every failure record."""
        removed = self.runs.clean_failures()
        log.info("removed %d failure records", len(removed))
        return {"removed": removed}

    def job_history(self, job_id: str, limit: int = 100) -> dict[str, Any]:
        """The latest run outcomes of a job, newest first (kept within the history retention)."""
        return {"runs": self.runs.history(job_id, min(max(limit, 1), MAX_PAGE))}

    # -- $filter queries -------------------------------------------------------------------------------

    def _filter_runner(self) -> FilterRunner:
        if self.filters is None:
            raise FilterError("no analytics database is configured for $filter queries")
        return self.filters

    def filter_sql(self, query: Any) -> dict[str, Any]:
        """``filter.sql``: the SQL of a ``$filter`` query and its bound parameters."""
        return self._filter_runner().sql(query, path="$.$filter")

    def filter_expand(self, query: Any, limit: int | None = None) -> dict[str, Any]:
        """``filter.expand``: the rows a ``$filter`` query matches (capped, see FilterRunner.expand)."""
        return self._filter_runner().expand(query, limit, path="$.$filter")

    # -- the whole scheduler ----------------------------------------------------------------------------

    def scheduler_state(self) -> dict[str, Any]:
        """``scheduler.state``."""
        return {"state": "paused" if self.state.is_paused() else "running"}

    def pause_scheduler(self) -> dict[str, Any]:
        """``scheduler.pause``: no job fires until resumed, across restarts; commands still apply."""
        self.state.set_paused(True)
        self.scheduler.pause()
        log.warning("scheduler paused: no job will fire until scheduler.resume")
        self.emit(events.SCHEDULER_PAUSED, None)
        return {"state": "paused"}

    def resume_scheduler(self) -> dict[str, Any]:
        """``scheduler.resume``."""
        self.state.set_paused(False)
        self.scheduler.resume()
        log.info("scheduler resumed")
        self.emit(events.SCHEDULER_RESUMED, None)
        return {"state": "running"}

    def health(self) -> dict[str, Any]:
        """Liveness (the scheduler thread is there) and readiness (the job store answers)."""
        try:
            ping(self.runtime.store.engine)
            store = "ok"
        except Exception as exc:
            store = str(exc)
        live = self.runtime.alive
        return {"live": live, "ready": live and store == "ok", "store": store}

    # -- helpers -----------------------------------------------------------------------------------------

    def _lookup(self, job_id: str) -> Job | None:
        with store_errors("job store"):
            return self.scheduler.get_job(job_id, jobstore=JOBS)

    def _require(self, job_id: str) -> Job:
        job = self._lookup(job_id)
        if job is None:
            raise JobNotFound(f"no job {job_id!r}")
        return job

    def _change(self, job_id: str, action: Any) -> Any:
        try:
            with store_errors("job store"):
                return action(job_id, jobstore=JOBS)
        except JobLookupError:
            raise JobNotFound(f"no job {job_id!r}") from None

    def emit(self, name: str, job_id: str | None, **fields: Any) -> None:
        pending = _deferred.get()
        if pending is not None:
            pending.append(Event(name, job_id, fields))
        else:
            self.sink.emit(Event(name, job_id, fields))
