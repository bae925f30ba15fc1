"""Recording what became of runs: each outcome with everything that goes with it, in one transaction.

An outcome is written with its history row (and for a failed run its failure record), its ``job.*`` event into
the outbox, and the end of its ledger entry; a job with ``pause_after_failures`` counts its consecutive
failures in the same transaction, and when the count reaches the limit the job is paused there too (with
``job.paused`` and the reason). So a failure is never listed without its run, a run never recorded without its
event, a run that finished is never reported interrupted, and a job is paused exactly when its limit is met.

The runner threads share these commits (:class:`~f8a_jobs_worker.group_commit.GroupCommit`) without waiting
for them: a thread hands its outcome over and takes its next run, and whichever thread finds no writer writes
everything waiting, so a catch-up's outcomes are written in batches as large as the backlog. A store that is
down is waited for by the writing thread (up to 10,000 outcomes queue meanwhile); an outcome not written when
the worker stops is left to its ledger entry, which reports the run interrupted at the next start.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any

from f8a_jobs_worker import retry
from f8a_jobs_worker.access.principal import WORKER
from f8a_jobs_worker.errors import Unavailable
from f8a_jobs_worker.events import Event
from f8a_jobs_worker.events import model as events
from f8a_jobs_worker.group_commit import GroupCommit, Written
from f8a_jobs_worker.job import Job
from f8a_jobs_worker.logs import job_fields
from f8a_jobs_worker.operations.metrics import Metrics
from f8a_jobs_worker.persistence.job_repository import JobRepository
from f8a_jobs_worker.persistence.ledger import LedgerEntry, RunLedger
from f8a_jobs_worker.persistence.runs import RunRecord, RunRows, RunStore
from f8a_jobs_worker.persistence.unit_of_work import Transactions, UnitOfWork

log = logging.getLogger(__name__)

#: makes a run's event once its failure record's id is known (None unless it failed)
EventOf = Callable[[str | None], Event]


@dataclass(frozen=True)
class Outcome:
    """One run's outcome as handed over: what happened, the ledger entry it ends, its event."""

    entry: LedgerEntry
    run: RunRecord
    event: EventOf
    traceback: str | None = None


class Outcomes:
    """Writes run outcomes (group-committed) and the outcomes a pass or a take-over decides."""

    def __init__(
        self,
        transactions: Transactions,
        runs: RunStore,
        jobs: JobRepository,
        ledger: RunLedger,
        metrics: Metrics,
    ) -> None:
        self.transactions = transactions
        self.runs = runs
        self.jobs = jobs
        self.ledger = ledger
        self.metrics = metrics
        #: set when the worker stops: an outcome that cannot be written then is left to the ledger
        self.stopping = threading.Event()
        self._outage = retry.Outage("job store (run records)", log)
        self._later: GroupCommit[Outcome, None] = GroupCommit(self._write_when_available)

    def finish_nowait(
        self, outcome: Outcome, written: Callable[[bool], None] | None = None
    ) -> None:
        """Hand ``outcome`` over to be written; this thread goes on. ``written(True)`` once it committed,
        ``written(False)`` if it could not be (the worker stopped while the store was down, or the rows
        were refused: its ledger entry then reports the run interrupted)."""
        self._later.submit_nowait(outcome, partial(self._written, outcome, written))

    def _written(
        self,
        outcome: Outcome,
        then: Callable[[bool], None] | None,
        result: Written[None],
    ) -> None:
        error = result.exception()
        if error is not None:
            run = outcome.run
            log.error(
                "could not record the %s run of job %s scheduled at %s (%s); its ledger entry reports "
                "it interrupted",
                run.outcome,
                run.job_id,
                run.scheduled_at,
                error,
            )
        else:
            self.metrics.run(outcome.run)
        if then is not None:
            then(error is None)

    def _write_when_available(self, batch: list[Outcome]) -> list[None]:
        written = retry.until_available(
            lambda: self._write(batch), Unavailable, self._outage, self.stopping
        )
        if written is None:
            raise Unavailable("the worker stopped while the job store was down")
        return written

    def _write(self, batch: list[Outcome]) -> list[None]:
        with self.transactions.begin() as uow:
            self._count_failures(uow, batch)
            rows = [
                RunRows.of(o.run, uow.now(), o.entry.kwargs, o.traceback, o.entry.started_by)
                for o in batch
            ]
            self.runs.insert(uow, rows)
            self.ledger.end(uow, [o.entry.run_id for o in batch])
            for outcome, written in zip(batch, rows, strict=True):
                uow.emit(_started_by(outcome.event(written.failure_id), outcome.entry))
        return [None] * len(batch)

    def _count_failures(self, uow: UnitOfWork, batch: list[Outcome]) -> None:
        """Consecutive failures of the jobs that count them: one more after a failure (the job paused when
        it reaches its limit), none after a success. The job's row is locked before its count, as a
        command changing the job does, so the two never wait for each other the other way round."""
        succeeded = [
            o.run.job_id
            for o in batch
            if o.entry.pause_after_failures is not None and o.run.outcome == "executed"
        ]
        self.runs.clear_streaks(uow, succeeded)
        for outcome in batch:
            limit = outcome.entry.pause_after_failures
            if limit is None or outcome.run.outcome != "failed":
                continue
            job = self.jobs.find(uow, outcome.run.job_id, lock=True)
            failures = self.runs.add_failure(uow, outcome.run.job_id)
            if failures >= limit and isinstance(job, Job) and job.next_run_time is not None:
                self._pause(uow, job, failures)

    def _pause(self, uow: UnitOfWork, job: Job, failures: int) -> None:
        reason = f"{failures} consecutive failed runs (pause_after_failures)"
        self.jobs.save(uow, [job.moved(None).state_changed(WORKER.to_dict(), uow.now())])
        uow.emit(Event(events.JOB_PAUSED, job.job_id, {"reason": reason, "by": WORKER.to_dict()}))
        uow.after_commit(
            partial(
                log.warning,
                "job %s (%s) paused after %s: resume it once the cause is fixed",
                job.job_id,
                job.handler,
                reason,
                extra=job_fields(job.job_id, job.handler),
            )
        )

    # -- outcomes decided inside a unit of work (a pass, a take-over): written with it -----------------------

    def record(
        self,
        uow: UnitOfWork,
        run: RunRecord,
        event: Event,
        started_by: dict[str, Any] | None = None,
    ) -> None:
        self.runs.insert(uow, [RunRows.of(run, uow.now(), started_by=started_by)])
        uow.emit(event)
        uow.after_commit(partial(self.metrics.run, run))

    def missed(self, uow: UnitOfWork, job: Job, run_time: datetime, reason: str) -> None:
        """A run not started (the previous one still runs, or it was too late): recorded missed."""
        log.warning(
            "job %s (%s) missed its run at %s: %s",
            job.job_id,
            job.handler,
            run_time.isoformat(),
            reason,
            extra=job_fields(job.job_id, job.handler),
        )
        run = RunRecord(job.job_id, job.handler, "missed", run_time, error=reason)
        self.record(uow, run, missed_event(job.job_id, run_time, reason))

    def interrupted(self, uow: UnitOfWork, entries: list[LedgerEntry]) -> None:
        """Runs a replica had started and never finished (it stopped, or was taken for gone)."""
        reason = "the worker running it stopped before it finished"
        for entry in entries:
            log.warning(
                "job %s (%s) run scheduled at %s was interrupted%s",
                entry.job_id,
                entry.handler,
                entry.scheduled_at.isoformat(),
                "; running it again" if entry.on_interrupt == "retry" else "",
                extra=job_fields(entry.job_id, entry.handler),
            )
            run = RunRecord(
                entry.job_id,
                entry.handler,
                "interrupted",
                entry.scheduled_at,
                None,
                uow.now(),
                error=reason,
            )
            fields = {
                "handler": entry.handler,
                "scheduled_run_time": entry.scheduled_at.isoformat(),
                "on_interrupt": entry.on_interrupt,
            }
            event = Event(events.JOB_INTERRUPTED, entry.job_id, fields)
            self.record(uow, run, _started_by(event, entry), entry.started_by)


def _started_by(event: Event, entry: LedgerEntry) -> Event:
    """A run's event, saying who started the run where a person did."""
    if entry.started_by is None:
        return event
    return replace(event, fields={**event.fields, "started_by": entry.started_by})


def missed_event(job_id: str, run_time: datetime, reason: str) -> Event:
    return Event(
        events.JOB_MISSED, job_id, {"scheduled_run_time": run_time.isoformat(), "reason": reason}
    )
