"""Running one scheduled run of a job: its grace time checked, its handler run, its outcome handed over.

The runner works from the run's ledger entry (handler name, kwargs, run time), not from the stored job: a
one-shot job is removed from the store by the pass that fires it, and a job may change while it runs. Each
outcome is handed to :class:`~f8a_jobs_worker.scheduling.outcomes.Outcomes`, which writes it with its event
and the end of the ledger entry in one transaction; the runner thread goes on meanwhile.
"""

from __future__ import annotations

import logging
import time
import traceback
from datetime import timedelta

from f8a_jobs_worker.clock import Clock
from f8a_jobs_worker.events import Event
from f8a_jobs_worker.events import model as events
from f8a_jobs_worker.filters.query import FilterRunner
from f8a_jobs_worker.flows.fanout import FlowDispatcher
from f8a_jobs_worker.handlers import HandlerContext, HandlerRegistry
from f8a_jobs_worker.logs import job_fields
from f8a_jobs_worker.persistence.ledger import LedgerEntry
from f8a_jobs_worker.persistence.runs import RunRecord
from f8a_jobs_worker.scheduling.outcomes import Outcome, Outcomes, missed_event

log = logging.getLogger(__name__)


class JobRunner:
    """Runs handlers and hands over what happened to each run."""

    def __init__(
        self,
        registry: HandlerRegistry,
        outcomes: Outcomes,
        clock: Clock,
        filters: FilterRunner | None = None,
        flows: FlowDispatcher | None = None,
    ) -> None:
        self.registry = registry
        self.outcomes = outcomes
        self.clock = clock
        self.filters = filters
        self.flows = flows

    def run(self, entries: list[LedgerEntry], grace_time: int | None) -> None:
        """Run each entry still inside its grace time (None: however late); record the others missed."""
        for entry in entries:
            late = self.clock.now() - entry.scheduled_at
            if grace_time is not None and late > timedelta(seconds=grace_time):
                self._missed(entry, f"late by {late}, grace {grace_time}s")
            else:
                self._run_once(entry)

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
        event = missed_event(entry.job_id, entry.scheduled_at, reason)
        self.outcomes.finish_nowait(Outcome(entry, run, lambda _: event))

    def _context(self, entry: LedgerEntry) -> HandlerContext:
        fields = job_fields(entry.job_id, entry.handler)
        logger = logging.getLogger(f"f8a_jobs_worker.job.{entry.handler}")
        return HandlerContext(
            entry.job_id,
            entry.handler,
            entry.scheduled_at,
            logging.LoggerAdapter(logger, fields),
            filters=self.filters,
            flows=self.flows,
        )

    def _run_once(self, entry: LedgerEntry) -> None:
        job_id, handler, run_time = entry.job_id, entry.handler, entry.scheduled_at
        fields = job_fields(job_id, handler)
        started = self.clock.now()
        clock = time.perf_counter()
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "job %s (%s) started, scheduled at %s", job_id, handler, run_time, extra=fields
            )
        try:
            summary = self.registry.get(handler)(self._context(entry)).execute(**entry.kwargs) or {}
        except Exception as exc:
            duration = time.perf_counter() - clock
            error = f"{type(exc).__name__}: {exc}"
            trace = traceback.format_exc()
            log.error(
                "job %s (%s) failed after %.3fs: %s", job_id, handler, duration, error, extra=fields
            )
            failed = {
                "handler": handler,
                "error": error,
                "traceback": trace,
                "scheduled_run_time": run_time.isoformat(),
                "duration_s": round(duration, 6),
            }
            run = RunRecord(
                job_id, handler, "failed", run_time, started, self.clock.now(), None, error
            )
            self.outcomes.finish_nowait(
                Outcome(
                    entry,
                    run,
                    lambda failure_id: Event(
                        events.JOB_FAILED, job_id, {**failed, "failure_id": failure_id}
                    ),
                    trace,
                )
            )
            return
        duration = time.perf_counter() - clock
        log.info("job %s (%s) executed in %.3fs", job_id, handler, duration, extra=fields)
        run = RunRecord(job_id, handler, "executed", run_time, started, self.clock.now(), summary)
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
        self.outcomes.finish_nowait(Outcome(entry, run, lambda _: executed))
