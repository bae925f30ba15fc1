"""The one APScheduler instance of a worker, and who owns it.

Today the worker process that calls :meth:`SchedulerRuntime.start` owns the scheduler for its job store. With
several replicas on one PostgreSQL, ownership would be decided here (a lease in ``f8a_scheduler_state``): the
owner starts unpaused, the others start paused and take over when the lease lapses (docs/architecture.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC
from typing import Any

import sqlalchemy as sa
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobSubmissionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_RUNNING, STATE_STOPPED

from f8a_jobs_worker import retry
from f8a_jobs_worker.errors import Unavailable
from f8a_jobs_worker.persistence.database import ping, short_reason, transaction
from f8a_jobs_worker.persistence.jobstore import BrokenJob, JobStore
from f8a_jobs_worker.scheduling.executor import JobExecutor
from f8a_jobs_worker.scheduling.jobs import handler_of
from f8a_jobs_worker.scheduling.runner import JobRunner

log = logging.getLogger(__name__)

JOBS = "default"  # alias of the persistent job store and of the executor that runs its jobs
INTERNAL = "internal"  # the worker's own housekeeping: in memory, never listed


class JobScheduler(BackgroundScheduler):  # type: ignore[misc]
    """A BackgroundScheduler that never touches the job store once shutdown has begun.

    APScheduler 3.11's main loop runs ``_process_jobs`` once more after ``shutdown()`` has stopped the executors:
    the submit fails, but the job's next run time is still advanced (or a one-shot job removed), so a run due at
    that moment is lost. Checking the state under the job-store lock closes that window: either a pass started
    before shutdown (and its runs were submitted to live executors, which shutdown waits for) or no pass runs.
    """

    def __init__(
        self,
        store: JobStore,
        on_broken: Callable[[list[BrokenJob]], None],
        **options: Any,
    ) -> None:
        self.store = store
        self.on_broken = on_broken
        #: scheduler passes so far (the loop is idle between passes unless jobs are due)
        self.passes = 0
        self._outage = retry.Outage("job store", log)
        super().__init__(jobstore_retry_interval=retry.MAX_DELAY, **options)

    def _process_jobs(self) -> float | None:
        """One pass: the due jobs (at most ``JobStore.due_per_pass``) are submitted and their next run
        times written in one transaction, so a catch-up of thousands of runs costs one commit per pass
        rather than one per run. A pass that cannot commit is retried about once a second, and the runs it
        submitted may run once more: the pass size bounds that. Jobs found broken are reported after the
        commit, outside the job-store lock."""
        with self._jobstores_lock:
            if self.state == STATE_STOPPED:
                return None
            self.passes += 1
            try:
                if self._outage.down:  # probe before APScheduler logs a failed read per attempt
                    ping(self.store.engine)
                with transaction(self.store.engine):
                    result: float | None = super()._process_jobs()
                    self.store.raise_read_error()
            except Exception as exc:
                # APScheduler guards reading due jobs but not writing next run times: an error there would
                # end the scheduler thread for good while the process lives on. Retry the pass instead.
                # A run submitted just before the failed write may run once more after recovery.
                self.store.take_broken()  # rolled back with the pass
                self._outage.failed(
                    short_reason(exc) if not isinstance(exc, Unavailable) else exc.message
                )
                return retry.MAX_DELAY
            self._outage.recovered()
        broken = self.store.take_broken()
        if broken:
            self.on_broken(broken)
        return result


class SchedulerRuntime:
    """Builds the scheduler around the job store and the runner, and runs its lifecycle."""

    def __init__(
        self, engine: sa.Engine, runner: JobRunner, threads: int, misfire_grace_time: int | None
    ) -> None:
        self.store = JobStore(engine)
        self.runner = runner
        self.executor = JobExecutor(runner, threads)
        self.scheduler = JobScheduler(
            self.store,
            runner.broken,
            jobstores={JOBS: self.store, INTERNAL: MemoryJobStore()},
            executors={JOBS: self.executor, INTERNAL: ThreadPoolExecutor(1)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": misfire_grace_time,
            },
            timezone=UTC,
        )
        self.scheduler.add_listener(self._skipped, EVENT_JOB_MAX_INSTANCES)

    def start(self, paused: bool) -> None:
        self.scheduler.start(paused=paused)
        log.info("scheduler started (%s)", "paused" if paused else "running")

    def shutdown(self, wait: bool = True) -> None:
        if self.scheduler.state != STATE_STOPPED:
            self.scheduler.shutdown(wait=wait)

    @property
    def running(self) -> bool:
        return bool(self.scheduler.state == STATE_RUNNING)

    @property
    def alive(self) -> bool:
        """The scheduler's thread is there to fire jobs (running or paused, not stopped)."""
        thread = getattr(self.scheduler, "_thread", None)
        return self.scheduler.state != STATE_STOPPED and thread is not None and thread.is_alive()

    def _skipped(self, event: JobSubmissionEvent) -> None:
        """A run not started because the previous one still runs is a missed run, and is recorded as one."""
        job = self.store.find(event.job_id)
        handler = handler_of(job) if isinstance(job, Job) else "unknown"
        for run_time in event.scheduled_run_times:
            self.runner.missed(
                event.job_id, handler, run_time, "the previous run was still in progress"
            )
