"""Starting backfill runs: a thread of each replica that looks when woken (a backfill was created, one of its
runs ended) and at least every second, and starts the runs that are due, in order, with their ledger entries.

Backfill runs are entered in the ledger like any run (a crash reports them interrupted), are not missed for
being late (they are late by design), and do not count against the job's ``overlap``: regular runs go on.
"""

from __future__ import annotations

import copy
import logging
import math
import threading
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from apscheduler.job import Job
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from f8a_jobs_worker import retry
from f8a_jobs_worker.errors import Unavailable, ValidationFailed
from f8a_jobs_worker.persistence.backfills import BackfillStore
from f8a_jobs_worker.persistence.database import store_errors
from f8a_jobs_worker.persistence.ledger import LedgerEntry
from f8a_jobs_worker.persistence.unit_of_work import Transactions
from f8a_jobs_worker.scheduling.jobs import handler_of, meta_of
from f8a_jobs_worker.scheduling.runtime import SchedulerRuntime
from f8a_jobs_worker.scheduling.spec import JobOptions

log = logging.getLogger(__name__)

LOOK_EVERY = 1.0
MAX_RUNS = 1000
MAX_CONCURRENCY = 100


def parse_moment(value: Any, name: str) -> datetime:
    """An ISO 8601 date or date-time; without a zone, UTC."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise ValidationFailed(
            f"{name}: expected an ISO 8601 date-time, got {value!r}",
            [{"path": f"$.{name}", "message": "not an ISO 8601 date-time"}],
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _anchored(trigger: Any, start: datetime) -> Any:
    """The trigger as if it had been there since ``start``: an interval's start moved back by whole
    intervals (its phase kept), a cron line's start bound lifted; jitter left out."""
    if getattr(trigger, "jitter", None):
        trigger.jitter = None
    if isinstance(trigger, IntervalTrigger) and trigger.start_date > start:
        steps = math.ceil((trigger.start_date - start) / trigger.interval)
        trigger.start_date = trigger.start_date - steps * trigger.interval
    elif isinstance(trigger, CronTrigger) and trigger.start_date and trigger.start_date > start:
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


class BackfillDriver:
    def __init__(
        self, transactions: Transactions, runtime: SchedulerRuntime, store: BackfillStore
    ) -> None:
        self.transactions = transactions
        self.runtime = runtime
        self.store = store
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._outage = retry.Outage("job store (backfills)", log)

    def start(self) -> None:
        self.runtime.executor.on_uncounted_run_done = self.wake
        self._thread = threading.Thread(target=self._loop, name="f8a-backfill", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(LOOK_EVERY)
            self._wake.clear()
            if self._stopping.is_set() or not self.runtime.running:
                continue
            try:
                with store_errors("job store"):
                    self.step()
                self._outage.recovered()
            except Unavailable as exc:
                self._outage.failed(exc.message)
            except Exception:
                log.exception("starting backfill runs failed; looking again shortly")

    def step(self) -> int:
        """Start the due backfill runs; return how many."""
        started = 0
        executor = self.runtime.executor
        with self.transactions.begin() as uow:
            connection = uow.connection
            for due in self.store.due(connection):
                job = self.runtime.store.find(connection, due.job_id)
                if not isinstance(job, Job):
                    continue  # broken: its backfill waits for a fix (deleting the job removes it)
                options = JobOptions.of(meta_of(job))
                entry = LedgerEntry.new(
                    job.id,
                    handler_of(job),
                    dict(job.kwargs),
                    due.scheduled_at,
                    options.on_interrupt,
                    options.pause_after_failures,
                )
                self.store.started(connection, due, entry.run_id)
                executor.start_entries_after_commit(uow, job.id, [entry], None, counted=False)
                started += 1
            for backfill_id, job_id in self.store.finish_done(connection):
                uow.after_commit(
                    partial(log.info, "backfill %s of job %s done", backfill_id, job_id)
                )
        return started
