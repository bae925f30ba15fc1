"""The executor: runs decided in a unit of work start once it commits, at their time, on a pool of threads.

A run is entered in the run ledger in the transaction that decided it (a pass, ``job.run_now``, a backfill, a
take-over) and handed to the pool only after that transaction commits (a run claimed ahead of its time, at its
time, by the alarm clock): a decision rolled back (or applied again) never starts a handler, and one that
committed always left a trace.

``max_instances`` counts a job's runs in progress here and, handed in by the caller, on other replicas (their
ledger entries); a run is counted before its decision commits and released if it rolls back. Runs start only
while this replica's heartbeat is fresh (:meth:`Replicas.fresh`); the runs declined for that are reported
interrupted by the heartbeat thread, so no run is both taken over by another replica and started here.

When a run of an ``overlap: buffer_one`` job ends, the run it kept starts (:meth:`RunExecutor.start_kept`):
the job's row is locked first, so a pass deciding about the job meanwhile either kept its run before this
look, or sees the ended run gone and starts its run itself.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from f8a_jobs_worker.job import Job
from f8a_jobs_worker.logs import job_fields
from f8a_jobs_worker.persistence.job_repository import JobRepository
from f8a_jobs_worker.persistence.ledger import LedgerEntry, RunLedger
from f8a_jobs_worker.persistence.replicas import Replicas
from f8a_jobs_worker.persistence.runs import RunStore
from f8a_jobs_worker.persistence.unit_of_work import Transactions, UnitOfWork
from f8a_jobs_worker.scheduling.alarm import AlarmClock
from f8a_jobs_worker.scheduling.pool import ThreadPool
from f8a_jobs_worker.scheduling.runner import JobRunner

log = logging.getLogger(__name__)

Callback = Callable[[], Any]


@dataclass(frozen=True)
class _Runs:
    """Runs of one job entered in the ledger, started once the decision commits."""

    job_id: str
    entries: list[LedgerEntry]
    grace: int | None
    #: called once they ended (not while the worker stops)
    on_end: Callback | None
    #: they are the job's instances, reserved by the caller (a backfill's are not)
    counted: bool


class RunExecutor:
    def __init__(
        self,
        runner: JobRunner,
        transactions: Transactions,
        jobs: JobRepository,
        runs: RunStore,
        ledger: RunLedger,
        replicas: Replicas,
        threads: int,
    ) -> None:
        self.runner = runner
        self.transactions = transactions
        self.jobs = jobs
        self.runs = runs
        self.ledger = ledger
        self.replicas = replicas
        #: starts the runs a pass claimed ahead of their time, at their time
        self.alarm = AlarmClock(transactions.clock, "f8a-fire-ahead")
        self._pool = ThreadPool(threads, "f8a-job")
        self._instances: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._declined: list[LedgerEntry] = []
        self._stopping = threading.Event()

    # -- counting runs ---------------------------------------------------------------------------------------

    def reserve(self, job_id: str, max_instances: int, elsewhere: int = 0) -> bool:
        """Count a run of ``job_id`` about to start, unless ``max_instances`` already run (here, and
        ``elsewhere`` on other replicas)."""
        with self._lock:
            if self._instances[job_id] + elsewhere >= max_instances:
                return False
            self._instances[job_id] += 1
            return True

    def release(self, job_id: str) -> None:
        """A counted run ended, or will not start after all."""
        with self._lock:
            self._instances[job_id] -= 1
            if self._instances[job_id] <= 0:
                del self._instances[job_id]

    # -- starting runs -------------------------------------------------------------------------------------

    def start_after_commit(
        self,
        uow: UnitOfWork,
        job: Job,
        run_times: list[datetime],
        started_by: dict[str, Any] | None = None,
    ) -> None:
        """Enter runs of ``job`` (counted already) in the ledger with ``uow``; start them once it commits.
        ``started_by``: who asked for them (None: the schedule)."""
        options = job.options
        entries = [
            LedgerEntry.new(
                job.job_id,
                job.handler,
                dict(job.kwargs),
                run_time,
                options.on_interrupt,
                options.pause_after_failures,
                started_by,
            )
            for run_time in run_times
        ]
        buffered = options.overlap == "buffer_one"
        on_end = partial(self.start_kept, job.job_id) if buffered else None
        self.start_entries_after_commit(uow, job.job_id, entries, job.misfire_grace_time, on_end)

    def start_entries_after_commit(
        self,
        uow: UnitOfWork,
        job_id: str,
        entries: list[LedgerEntry],
        grace: int | None,
        on_end: Callback | None = None,
        counted: bool = True,
    ) -> None:
        """``counted``: the runs are the job's instances (reserved by the caller); a backfill's are not.
        ``on_end`` is called once they ended (not while the worker stops)."""
        self.ledger.start(uow, entries)
        start = partial(self._start, _Runs(job_id, entries, grace, on_end, counted))
        uow.after_commit(partial(self.alarm.at, max(e.scheduled_at for e in entries), start))
        if counted:
            uow.after_rollback(partial(self.release, job_id))

    def _start(self, runs: _Runs) -> None:
        if not self.replicas.fresh():
            log.warning(
                "not starting %d run(s) of job %s: this replica's heartbeat is stale (the store was "
                "unreachable), so the others may take them over; they are reported interrupted",
                len(runs.entries),
                runs.job_id,
            )
            self.decline(runs.entries)
            if runs.counted:
                self.release(runs.job_id)
            return
        self._pool.submit(partial(self._run, runs))

    def _run(self, runs: _Runs) -> None:
        """On a thread of the pool: the runs, then what follows their end."""
        try:
            self.runner.run(runs.entries, runs.grace)
        except Exception:
            log.exception("a run of job %s failed outside its handler", runs.job_id)
        if runs.counted:
            self.release(runs.job_id)
        if runs.on_end is not None and not self._stopping.is_set():
            try:
                runs.on_end()
            except Exception:
                log.exception("what follows the end of a run of job %s failed", runs.job_id)

    def start_kept(self, job_id: str) -> None:
        """A run of an ``overlap: buffer_one`` job ended: start the run it kept, if any."""
        with self.transactions.begin() as uow:
            job = self.jobs.find(uow, job_id, lock=True)
            scheduled_at = self.runs.take_buffered(uow, job_id)
            if scheduled_at is None or not isinstance(job, Job):
                return
            elsewhere = self.ledger.running_elsewhere(uow, [job_id]).get(job_id, 0)
            if not self.reserve(job_id, job.max_instances, elsewhere):
                self.runs.buffer(
                    uow, job_id, scheduled_at
                )  # a run started meanwhile: wait for its end
                return
            self.start_after_commit(uow, job, [scheduled_at])
            uow.after_commit(
                partial(
                    log.info,
                    "job %s (%s): the run due at %s, kept while the previous one ran, starts now",
                    job_id,
                    job.handler,
                    scheduled_at.isoformat(),
                    extra=job_fields(job_id, job.handler),
                )
            )

    # -- runs declined, and the end ------------------------------------------------------------------------

    def decline(self, entries: list[LedgerEntry]) -> None:
        """Runs entered and not started: for the heartbeat thread to report."""
        with self._lock:
            self._declined.extend(entries)

    def take_declined(self) -> list[LedgerEntry]:
        with self._lock:
            declined, self._declined = self._declined, []
        return declined

    def stop(self, wait: bool = True) -> None:
        """The runs claimed ahead start at their time (a few milliseconds), then the pool stops; with
        ``wait``, once the running handlers finished. A kept ``buffer_one`` run is not started now: it stays
        stored and starts when a run of its job next ends."""
        self._stopping.set()
        self.alarm.stop()
        self._pool.shutdown(wait=wait)
