"""Running one scheduled run of a job: misfire check, handler, outcome recorded with its event.

Outcomes are recorded here rather than in scheduler listeners because a one-shot job is already removed from
the store when it runs; only the runner still knows its handler and kwargs (from its run-ledger entry). Each
outcome is written with its event and the end of its ledger entry in one transaction (the outbox sends the
event); a store that is down is waited for, so an outcome is never silently lost.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, NoReturn

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)

from f8a_jobs_worker.events import Event
from f8a_jobs_worker.events import model as events
from f8a_jobs_worker.filters.query import FilterRunner
from f8a_jobs_worker.flows.dispatch import FlowDispatcher
from f8a_jobs_worker.handlers import HandlerContext, HandlerRegistry
from f8a_jobs_worker.logs import job_fields
from f8a_jobs_worker.operations.metrics import Metrics
from f8a_jobs_worker.persistence.jobstore import BrokenJob
from f8a_jobs_worker.persistence.ledger import LedgerEntry
from f8a_jobs_worker.persistence.runs import Recorded, RunRecord, RunStore
from f8a_jobs_worker.persistence.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


def run_job(*_args: Any, **_kwargs: Any) -> NoReturn:
    """The callable every stored job names (``RUNNER_REF``). Jobs run through :class:`JobRunner`, invoked
    by the worker's executor, which never calls this; it exists so that stored jobs name one stable,
    harmless function instead of anything that came from input."""
    raise RuntimeError("f8a-jobs-worker jobs run through JobExecutor, not by calling run_job")


class JobRunner:
    """Runs handlers and records what happened to each run."""

    def __init__(
        self,
        registry: HandlerRegistry,
        runs: RunStore,
        filters: FilterRunner | None = None,
        flows: FlowDispatcher | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.registry = registry
        self.runs = runs
        self.filters = filters
        self.flows = flows
        self.metrics = metrics or Metrics()
        #: called with (job_id, consecutive failures) when a job with pause_after_failures reached it
        self.on_failures: Callable[[str, int], None] | None = None
        #: set when the worker stops: an outcome that cannot be recorded then is left to the ledger
        self.stopping = runs.stopping

    def run(
        self, jobstore: str, entries: list[LedgerEntry], grace_time: int | None
    ) -> list[JobExecutionEvent]:
        """Run each entry still inside its grace time (None: however late); return APScheduler events."""
        outcomes = []
        for entry in entries:
            late = datetime.now(UTC) - entry.scheduled_at
            if grace_time is not None and late > timedelta(seconds=grace_time):
                self._missed(entry, f"late by {late}, grace {grace_time}s")
                outcomes.append(
                    JobExecutionEvent(EVENT_JOB_MISSED, entry.job_id, jobstore, entry.scheduled_at)
                )
            else:
                outcomes.append(self._run_once(jobstore, entry))
        return outcomes

    # -- decided inside a scheduler pass: written with the pass ----------------------------------------

    def _record(self, uow: UnitOfWork, run: RunRecord, event: Event) -> None:
        self.runs.record(uow, run, event)
        uow.after_commit(partial(self.metrics.run, run))

    def skipped(
        self, uow: UnitOfWork, job_id: str, handler: str, run_time: datetime, reason: str
    ) -> None:
        """A run not started (the previous one still runs): recorded as missed with the pass."""
        log.warning(
            "job %s (%s) missed its run at %s: %s",
            job_id,
            handler,
            run_time.isoformat(),
            reason,
            extra=job_fields(job_id, handler),
        )
        self._record(
            uow,
            RunRecord(job_id, handler, "missed", run_time, error=reason),
            _missed_event(job_id, run_time, reason),
        )

    def broken(self, uow: UnitOfWork, jobs: list[BrokenJob]) -> None:
        """Jobs the pass found broken when they fell due: told once, kept until deleted or replaced."""
        for job in jobs:
            uow.emit(
                Event(events.JOB_BROKEN, job.job_id, {"handler": job.handler, "error": job.reason})
            )
            uow.after_commit(
                partial(
                    log.error,
                    "job %s (%s) cannot be restored and will not run until it is replaced or a fix "
                    "is deployed: %s",
                    job.job_id,
                    job.handler,
                    job.reason,
                    extra=job_fields(job.job_id, job.handler),
                )
            )

    def interrupted(self, uow: UnitOfWork, entries: list[LedgerEntry], now: datetime) -> None:
        """Runs a killed worker had started and never finished: recorded and announced."""
        for entry in entries:
            reason = "the worker running it stopped before it finished"
            log.warning(
                "job %s (%s) run scheduled at %s was interrupted%s",
                entry.job_id,
                entry.handler,
                entry.scheduled_at.isoformat(),
                "; running it again" if entry.on_interrupt == "retry" else "",
                extra=job_fields(entry.job_id, entry.handler),
            )
            self._record(
                uow,
                RunRecord(
                    entry.job_id,
                    entry.handler,
                    "interrupted",
                    entry.scheduled_at,
                    None,
                    now,
                    error=reason,
                ),
                Event(
                    events.JOB_INTERRUPTED,
                    entry.job_id,
                    {
                        "handler": entry.handler,
                        "scheduled_run_time": entry.scheduled_at.isoformat(),
                        "on_interrupt": entry.on_interrupt,
                    },
                ),
            )

    # -- decided in a runner thread: written with a commit the runner threads share ----------------------

    def _missed(self, entry: LedgerEntry, reason: str) -> None:
        log.warning(
            "job %s (%s) missed its run at %s: %s",
            entry.job_id,
            entry.handler,
            entry.scheduled_at.isoformat(),
            reason,
            extra=job_fields(entry.job_id, entry.handler),
        )
        run = RunRecord(entry.job_id, entry.handler, "missed", entry.scheduled_at, error=reason)
        self._finish(entry, run, lambda _: _missed_event(entry.job_id, entry.scheduled_at, reason))

    def _run_once(self, jobstore: str, entry: LedgerEntry) -> JobExecutionEvent:
        job_id, handler, run_time = entry.job_id, entry.handler, entry.scheduled_at
        started = datetime.now(UTC)
        clock = time.perf_counter()
        fields = job_fields(job_id, handler)
        context = HandlerContext(
            job_id,
            handler,
            run_time,
            logging.LoggerAdapter(logging.getLogger(f"f8a_jobs_worker.job.{handler}"), fields),
            filters=self.filters,
            flows=self.flows,
        )
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "job %s (%s) started, scheduled at %s",
                job_id,
                handler,
                run_time.isoformat(),
                extra=fields,
            )
        try:
            summary = self.registry.get(handler)(context).execute(**entry.kwargs) or {}
        except Exception as exc:
            duration = time.perf_counter() - clock
            error = f"{type(exc).__name__}: {exc}"
            trace = traceback.format_exc()
            log.error(
                "job %s (%s) failed after %.3fs: %s", job_id, handler, duration, error, extra=fields
            )
            run = RunRecord(
                job_id, handler, "failed", run_time, started, datetime.now(UTC), error=error
            )

            def failed(failure_id: str | None) -> Event:
                return Event(
                    events.JOB_FAILED,
                    job_id,
                    {
                        "handler": handler,
                        "error": error,
                        "traceback": trace,
                        "failure_id": failure_id,
                        "scheduled_run_time": run_time.isoformat(),
                        "duration_s": round(duration, 6),
                    },
                )

            self._finish(entry, run, failed, trace)
            return JobExecutionEvent(
                EVENT_JOB_ERROR, job_id, jobstore, run_time, exception=exc, traceback=trace
            )
        duration = time.perf_counter() - clock
        log.info("job %s (%s) executed in %.3fs", job_id, handler, duration, extra=fields)
        run = RunRecord(
            job_id, handler, "executed", run_time, started, datetime.now(UTC), summary=summary
        )
        executed = Event(
            events.JOB_EXECUTED,
            job_id,
            {
                "handler": handler,
                "duration_s": round(duration, 6),
                "summary": summary,
                "scheduled_run_time": run_time.isoformat(),
            },
        )
        self._finish(entry, run, lambda _: executed)
        return JobExecutionEvent(EVENT_JOB_EXECUTED, job_id, jobstore, run_time, retval=summary)

    def _finish(
        self,
        entry: LedgerEntry,
        run: RunRecord,
        event: Callable[[str | None], Event],
        trace: str | None = None,
    ) -> None:
        """Hand over the outcome, its event and the end of its ledger entry to be recorded together; this
        thread goes on meanwhile (see :meth:`RunStore.finish_nowait`)."""
        limit = entry.pause_after_failures

        def recorded(done: Recorded | None) -> None:
            if done is None:
                return
            self.metrics.run(run)
            streak = done.streak
            if limit is not None and streak is not None and streak >= limit and self.on_failures:
                if self.stopping.is_set():  # shutdown holds the job-store lock the pause needs
                    log.warning(
                        "job %s failed %d times in a row as the worker stops: it is paused at its "
                        "next failure",
                        entry.job_id,
                        streak,
                    )
                    return
                try:
                    self.on_failures(entry.job_id, streak)
                except Exception:  # the next failure tries again: the count stays
                    log.exception("could not pause job %s after %d failures", entry.job_id, streak)

        self.runs.finish_nowait(
            run, event, recorded, entry.run_id, entry.kwargs, trace, streak=limit is not None
        )


def _missed_event(job_id: str, run_time: datetime, reason: str) -> Event:
    return Event(
        events.JOB_MISSED, job_id, {"scheduled_run_time": run_time.isoformat(), "reason": reason}
    )
