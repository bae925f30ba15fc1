"""Backfills: the run times a schedule had in a past window (:func:`run_times`), and the thread of each replica
that starts them (:class:`BackfillDriver`), in order, with their ledger entries, as many at a time as asked.

Backfill runs are entered in the ledger like any run (a crash reports them interrupted), are not missed for
being late (they are late by design), and do not count against the job's ``overlap``: regular runs go on.
"""

from __future__ import annotations

import copy
import logging
import math
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from f8a_jobs_worker import retry
from f8a_jobs_worker.errors import ValidationFailed
from f8a_jobs_worker.job import Job
from f8a_jobs_worker.lifecycle import Doorbell, Rounds
from f8a_jobs_worker.persistence.backfill_store import BackfillStore
from f8a_jobs_worker.persistence.database import store_errors
from f8a_jobs_worker.persistence.job_repository import JobRepository
from f8a_jobs_worker.persistence.ledger import LedgerEntry
from f8a_jobs_worker.persistence.unit_of_work import Transactions
from f8a_jobs_worker.scheduling.executor import RunExecutor
from f8a_jobs_worker.scheduling.local_trigger import LocalTimeTrigger
from f8a_jobs_worker.scheduling.scheduler import Scheduler

log = logging.getLogger(__name__)

LOOK_EVERY = 1.0
MAX_RUNS = 1000
MAX_CONCURRENCY = 100


def _anchored(trigger: Any, start: datetime) -> Any:
    """The trigger as if it had been there since ``start``: an interval's start moved back by whole
    intervals (its phase kept), a cron line's start bound lifted; jitter left out."""
    if getattr(trigger, "jitter", None):
        trigger.jitter = None
    if isinstance(trigger, IntervalTrigger) and trigger.start_date > start:
        steps = math.ceil((trigger.start_date - start) / trigger.interval)
        trigger.start_date = trigger.start_date - steps * trigger.interval
    elif (
        isinstance(trigger, CronTrigger | LocalTimeTrigger)
        and trigger.start_date
        and trigger.start_date > start
    ):
        trigger.start_date = start
    return trigger


def run_times(job: Job, start: datetime, end: datetime, now: datetime) -> list[datetime]:
    """Every time the job's schedule fired in ``[start, end)`` (jitter left out); validation_error for a
    window that is empty, in the future or holds more than :data:`MAX_RUNS` runs."""
    if not start < end:
        raise ValidationFailed(
            "start must be before end", [{"path": "$.end", "message": "not after start"}]
        )
    if end > now:
        raise ValidationFailed(
            "end must not be in the future: a backfill runs what the schedule had",
            [{"path": "$.end", "message": "in the future"}],
        )
    trigger = _anchored(copy.copy(job.trigger), start)
    times: list[datetime] = []
    moment = trigger.get_next_fire_time(None, start)
    while moment is not None and moment < end:
        if len(times) == MAX_RUNS:
            raise ValidationFailed(
                f"the window holds more than {MAX_RUNS} runs of this schedule; backfill it in parts",
                [{"path": "$.end", "message": f"more than {MAX_RUNS} runs"}],
            )
        times.append(moment)
        moment = trigger.get_next_fire_time(moment, moment + timedelta(microseconds=1))
    return times


class BackfillDriver(Rounds):
    """The thread that starts backfill runs: when its doorbell rings (a backfill was stored, one of its
    runs ended) and at least every second, not while the scheduler is paused."""

    def __init__(
        self,
        transactions: Transactions,
        jobs: JobRepository,
        backfills: BackfillStore,
        executor: RunExecutor,
        scheduler: Scheduler,
        bell: Doorbell,
    ) -> None:
        super().__init__(
            "f8a-backfill", LOOK_EVERY, retry.Outage("job store (backfills)", log), bell
        )
        self.transactions = transactions
        self.jobs = jobs
        self.backfills = backfills
        self.executor = executor
        self.scheduler = scheduler

    def round(self) -> None:
        if self.scheduler.running:
            with store_errors("job store"):
                self.step()

    def step(self) -> int:
        """Start the due backfill runs; return how many."""
        started = 0
        with self.transactions.begin() as uow:
            for due in self.backfills.due(uow):
                job = self.jobs.find(uow, due.job_id)
                if not isinstance(job, Job):
                    continue  # broken: its backfill waits for a fix (deleting the job removes it)
                options = job.options
                entry = LedgerEntry.new(
                    job.job_id,
                    job.handler,
                    dict(job.kwargs),
                    due.scheduled_at,
                    options.on_interrupt,
                    options.pause_after_failures,
                    due.started_by,
                )
                self.backfills.started(uow, due, entry.run_id)
                self.executor.start_entries_after_commit(
                    uow, job.job_id, [entry], None, on_end=self.bell.ring, counted=False
                )
                started += 1
            for backfill_id, job_id in self.backfills.finish_done(uow):
                uow.after_commit(
                    partial(log.info, "backfill %s of job %s done", backfill_id, job_id)
                )
        return started
