"""The thread-pool executor that runs jobs through :class:`JobRunner`.

It replaces APScheduler's ``run_job`` (which calls the stored function) so that a stored job needs no callable
of its own and every outcome is recorded by the runner. A run is entered in the run ledger in the transaction
that decided it and handed to the pool only after that transaction commits (a run claimed ahead of its time,
at its time): a pass or a command that is rolled back (or re-applied) never starts a handler, and one that
committed always left a trace of the run.

Across replicas: ``max_instances`` counts the job's runs in progress on other replicas too (their ledger
entries, read with each pass's claim: :attr:`JobExecutor.elsewhere`), and runs start only while this replica's
heartbeat is fresh (:meth:`Replicas.fresh`); runs declined for that are reported interrupted by the heartbeat
thread, so no run is both taken over by another replica and started here.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime
from functools import partial
from typing import Any

from apscheduler.executors.base import MaxInstancesReachedError
from apscheduler.executors.pool import BasePoolExecutor
from apscheduler.job import Job

from f8a_jobs_worker.persistence.ledger import LedgerEntry, RunLedger
from f8a_jobs_worker.persistence.replicas import Replicas
from f8a_jobs_worker.persistence.unit_of_work import UnitOfWork
from f8a_jobs_worker.scheduling.alarm import AlarmClock
from f8a_jobs_worker.scheduling.jobs import handler_of, meta_of
from f8a_jobs_worker.scheduling.runner import JobRunner
from f8a_jobs_worker.scheduling.spec import JobOptions

log = logging.getLogger(__name__)


class JobExecutor(BasePoolExecutor):  # type: ignore[misc]
    def __init__(
        self,
        runner: JobRunner,
        ledger: RunLedger,
        replicas: Replicas,
        alias: str,
        max_workers: int,
    ) -> None:
        super().__init__(
            concurrent.futures.ThreadPoolExecutor(max_workers, thread_name_prefix="f8a-job")
        )
        self.runner = runner
        self.ledger = ledger
        self.replicas = replicas
        self.alias = alias
        #: runs in progress on other replicas, by job, for the jobs of the pass in progress
        self.elsewhere: dict[str, int] = {}
        self._declined: list[LedgerEntry] = []
        self._declined_lock = threading.Lock()
        #: called with the job id when a run of an ``overlap: buffer_one`` job ended (its slot released)
        self.on_buffered_run_done: Callable[[str], None] | None = None
        #: called when a run that does not count as the job's instance (a backfill's) ended
        self.on_uncounted_run_done: Callable[[], None] | None = None
        #: starts the runs a pass claimed ahead of their time (JobScheduler._fire_due) when they are due
        self.alarm = AlarmClock("f8a-fire-ahead")

    def shutdown(self, wait: bool = True) -> None:
        """The runs claimed ahead start at their time (a few milliseconds), then the pool stops.

        APScheduler calls this holding the job-store lock, so a run that ends meanwhile must not ask for it:
        a kept ``buffer_one`` run then stays stored (started when a run of the job next ends). The runner's
        ``stopping`` says so; ``SchedulerRuntime.shutdown`` sets it before the scheduler's shutdown."""
        self.alarm.stop()
        super().shutdown(wait)

    def submit_job(self, job: Job, run_times: list[datetime]) -> None:
        """APScheduler's check of ``max_instances``, counting the runs on other replicas too. The run is
        counted under the executor's lock and entered in the ledger outside it: runner threads that
        finish (and release their counts) do not wait for the pass's ledger work."""
        if not self.reserve(job.id, job.max_instances, self.elsewhere.get(job.id, 0)):
            raise MaxInstancesReachedError(job)
        try:
            self._do_submit_job(job, run_times)
        except BaseException:
            self.release(job.id)
            raise

    def _do_submit_job(self, job: Job, run_times: list[datetime]) -> None:
        """Called by APScheduler inside a scheduler pass (``JobScheduler.pass_uow``), its instance
        counted already."""
        uow: UnitOfWork = self._scheduler.pass_uow
        self.start_after_commit(uow, job, run_times)

    def start_after_commit(self, uow: UnitOfWork, job: Job, run_times: list[datetime]) -> None:
        """Enter the runs in the ledger with ``uow`` and start them once it commits (release the instance
        counted for them if it rolls back)."""
        options = JobOptions.of(meta_of(job))
        entries = [
            LedgerEntry.new(
                job.id,
                handler_of(job),
                dict(job.kwargs),
                run_time,
                options.on_interrupt,
                options.pause_after_failures,
            )
            for run_time in run_times
        ]
        self.start_entries_after_commit(
            uow, job.id, entries, job.misfire_grace_time, options.overlap == "buffer_one"
        )

    def start_entries_after_commit(
        self,
        uow: UnitOfWork,
        job_id: str,
        entries: list[LedgerEntry],
        grace: int | None,
        buffered: bool = False,
        counted: bool = True,
    ) -> None:
        """``buffered``: the job keeps one run for when this one ends (``overlap: buffer_one``).
        ``counted``: the runs count as the job's instances (reserved by the caller); a backfill's do not."""
        self.ledger.start(uow, entries)
        start = partial(self._start, job_id, entries, grace, buffered, counted)
        uow.after_commit(partial(self.alarm.at, max(e.scheduled_at for e in entries), start))
        if counted:
            uow.after_rollback(partial(self.release, job_id))

    def reserve(self, job_id: str, max_instances: int, elsewhere: int = 0) -> bool:
        """Count a run of ``job_id`` that is about to start, unless ``max_instances`` already run (here, and
        ``elsewhere`` on other replicas)."""
        with self._lock:
            if self._instances[job_id] + elsewhere >= max_instances:
                return False
            self._instances[job_id] += 1
            return True

    def release(self, job_id: str) -> None:
        """A counted run that will not start after all."""
        self._run_job_success(job_id, [])

    def _start(
        self,
        job_id: str,
        entries: list[LedgerEntry],
        grace: int | None,
        buffered: bool = False,
        counted: bool = True,
    ) -> None:
        if not self.replicas.fresh():
            log.warning(
                "not starting %d run(s) of job %s: this replica's heartbeat is stale (the store was "
                "unreachable), so the others may take them over; they are reported interrupted",
                len(entries),
                job_id,
            )
            self.decline(entries)
            if counted:
                self.release(job_id)
            return
        future = self._pool.submit(self.runner.run, self.alias, entries, grace)
        if counted:
            future.add_done_callback(partial(self._finished, job_id, buffered))
        else:
            future.add_done_callback(self._uncounted_finished)

    def _uncounted_finished(self, future: Future[Any]) -> None:
        exc = future.exception()
        if exc is not None:
            log.error("a backfill run failed outside its handler", exc_info=exc)
        if self.on_uncounted_run_done is not None:
            self.on_uncounted_run_done()

    def _finished(self, job_id: str, buffered: bool, future: Future[Any]) -> None:
        exc = future.exception()
        if exc is not None:
            self._run_job_error(job_id, exc, exc.__traceback__)
        else:
            self._run_job_success(job_id, future.result())
        if buffered and self.on_buffered_run_done is not None and not self.runner.stopping.is_set():
            # after the slot is released: a pass deciding meanwhile starts the next run itself, or kept
            # it before this look (the job's row lock orders the two)
            try:
                self.on_buffered_run_done(job_id)
            except Exception:
                log.exception("could not start the buffered run of job %s", job_id)

    def decline(self, entries: list[LedgerEntry]) -> None:
        """Runs entered and not started: for the heartbeat thread to report."""
        with self._declined_lock:
            self._declined.extend(entries)

    def take_declined(self) -> list[LedgerEntry]:
        with self._declined_lock:
            declined, self._declined = self._declined, []
        return declined
