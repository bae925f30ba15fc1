"""Running one scheduled run of a job: misfire check, handler, outcome recorded, event emitted.

Outcomes are recorded here rather than in scheduler listeners because a one-shot job is already removed from
the store when it runs; only the runner still knows its handler and kwargs.
"""

from __future__ import annotations

import logging
import time
import traceback
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)

from f8a_jobs_worker.events import Event, EventSink
from f8a_jobs_worker.events import model as events
from f8a_jobs_worker.filters.query import FilterRunner
from f8a_jobs_worker.flows.dispatch import FlowDispatcher
from f8a_jobs_worker.handlers import HandlerContext, HandlerRegistry
from f8a_jobs_worker.persistence.jobstore import BrokenJob
from f8a_jobs_worker.persistence.runs import RunRecord, RunStore

log = logging.getLogger(__name__)


def run_job(*_args: Any, **_kwargs: Any) -> NoReturn:
    """The callable every stored job names (``RUNNER_REF``). Jobs run through :class:`JobRunner`, invoked
    by the worker's executor, which never calls this; it exists so that stored jobs name one stable,
    harmless function instead of anything that came from input."""
    raise RuntimeError("f8a-jobs-worker jobs run through JobExecutor, not by calling run_job")


class JobRunner:
    """Runs handlers and records what happened to each run.

    ``sink`` must not raise; the worker hands in a :class:`~f8a_jobs_worker.events.SafeEventSink`.
    """

    def __init__(
        self,
        registry: HandlerRegistry,
        runs: RunStore,
        sink: EventSink,
        filters: FilterRunner | None = None,
        flows: FlowDispatcher | None = None,
    ) -> None:
        self.registry = registry
        self.runs = runs
        self.sink = sink
        self.filters = filters
        self.flows = flows

    def run(
        self,
        job_id: str,
        jobstore: str,
        handler: str,
        kwargs: dict[str, Any],
        run_times: list[datetime],
        grace_time: int | None,
    ) -> list[JobExecutionEvent]:
        """Run the job once per due run time still inside its grace time; return APScheduler events."""
        outcomes = []
        for run_time in run_times:
            late = datetime.now(UTC) - run_time
            if grace_time is not None and late > timedelta(seconds=grace_time):
                self.missed(job_id, handler, run_time, f"late by {late}, grace {grace_time}s")
                outcomes.append(JobExecutionEvent(EVENT_JOB_MISSED, job_id, jobstore, run_time))
            else:
                outcomes.append(self._run_once(job_id, jobstore, handler, kwargs, run_time))
        return outcomes

    def broken(self, jobs: list[BrokenJob]) -> None:
        """Jobs the scheduler found broken when they fell due: told once, kept until deleted or replaced."""
        for job in jobs:
            log.error(
                "job %s (%s) cannot be restored and will not run until it is replaced or a fix is "
                "deployed: %s",
                job.job_id,
                job.handler,
                job.reason,
            )
            self._emit(events.JOB_BROKEN, job.job_id, handler=job.handler, error=job.reason)

    def missed(self, job_id: str, handler: str, run_time: datetime, reason: str) -> None:
        log.warning(
            "job %s (%s) missed its run at %s: %s", job_id, handler, run_time.isoformat(), reason
        )
        self._record(RunRecord(job_id, handler, "missed", run_time, error=reason))
        self._emit(
            events.JOB_MISSED, job_id, scheduled_run_time=run_time.isoformat(), reason=reason
        )

    def _run_once(
        self, job_id: str, jobstore: str, handler: str, kwargs: dict[str, Any], run_time: datetime
    ) -> JobExecutionEvent:
        started = datetime.now(UTC)
        clock = time.perf_counter()
        context = HandlerContext(
            job_id,
            handler,
            run_time,
            logging.getLogger(f"f8a_jobs_worker.job.{handler}"),
            filters=self.filters,
            flows=self.flows,
        )
        log.debug("job %s (%s) started, scheduled at %s", job_id, handler, run_time.isoformat())
        try:
            summary = self.registry.get(handler)(context).execute(**kwargs) or {}
        except Exception as exc:
            duration = time.perf_counter() - clock
            error = f"{type(exc).__name__}: {exc}"
            trace = traceback.format_exc()
            log.error("job %s (%s) failed after %.3fs: %s", job_id, handler, duration, error)
            run = RunRecord(
                job_id, handler, "failed", run_time, started, datetime.now(UTC), error=error
            )
            failure_id = self._record(run, kwargs=kwargs, trace=trace)
            self._emit(
                events.JOB_FAILED,
                job_id,
                handler=handler,
                error=error,
                traceback=trace,
                failure_id=failure_id,
                scheduled_run_time=run_time.isoformat(),
                duration_s=round(duration, 6),
            )
            return JobExecutionEvent(
                EVENT_JOB_ERROR, job_id, jobstore, run_time, exception=exc, traceback=trace
            )
        duration = time.perf_counter() - clock
        log.info("job %s (%s) executed in %.3fs", job_id, handler, duration)
        self._record(
            RunRecord(
                job_id, handler, "executed", run_time, started, datetime.now(UTC), summary=summary
            )
        )
        self._emit(
            events.JOB_EXECUTED,
            job_id,
            handler=handler,
            duration_s=round(duration, 6),
            summary=summary,
            scheduled_run_time=run_time.isoformat(),
        )
        return JobExecutionEvent(EVENT_JOB_EXECUTED, job_id, jobstore, run_time, retval=summary)

    def _record(
        self, run: RunRecord, kwargs: dict[str, Any] | None = None, trace: str | None = None
    ) -> str | None:
        """Store the outcome; if the store is down the outcome is logged in full instead of lost silently."""
        try:
            return self.runs.record(run, kwargs=kwargs, traceback=trace)
        except Exception:
            log.exception(
                "could not record %s run of job %s scheduled at %s (error: %s)",
                run.outcome,
                run.job_id,
                run.scheduled_at,
                run.error,
            )
            return None

    def _emit(self, name: str, job_id: str, **fields: Any) -> None:
        self.sink.emit(Event(name, job_id, fields))
