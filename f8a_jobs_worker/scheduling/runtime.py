"""The APScheduler instance of a replica, and how replicas share the job store.

Every replica runs a scheduler over the same job table. A pass claims the due jobs it fires with ``SELECT ...
FOR UPDATE SKIP LOCKED`` (:meth:`JobStore.get_due_jobs`) and, in the same transaction, advances their next
run times, enters their runs in the ledger and renews the replica's heartbeat: another replica's pass skips
the rows one holds, and once it commits they are no longer due. So every run time is fired by one replica,
and a pass that fails (the replica killed, cut off) is rolled back whole and the rows are free again. The
stored ``scheduler.pause`` is read in every pass (under a share lock, so a pass and a pause are ordered), and
the wait between passes is capped by the poll interval: a change made through another replica is seen even
if its notification is lost. A pass also claims the runs due within :data:`FIRE_AHEAD`, which the executor
starts at their time (docs/architecture.md, "Runs claimed ahead").
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from threading import TIMEOUT_MAX
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.executors.base import MaxInstancesReachedError
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_PAUSED, STATE_RUNNING, STATE_STOPPED

from f8a_jobs_worker import retry
from f8a_jobs_worker.errors import Unavailable
from f8a_jobs_worker.persistence.database import ping, short_reason
from f8a_jobs_worker.persistence.jobstore import JobStore
from f8a_jobs_worker.persistence.ledger import RunLedger
from f8a_jobs_worker.persistence.replicas import Replicas
from f8a_jobs_worker.persistence.state import SchedulerStateStore
from f8a_jobs_worker.persistence.unit_of_work import Transactions, UnitOfWork
from f8a_jobs_worker.scheduling.executor import JobExecutor
from f8a_jobs_worker.scheduling.jobs import RUNNER_REF, handler_of, meta_of
from f8a_jobs_worker.scheduling.runner import JobRunner
from f8a_jobs_worker.scheduling.spec import JobOptions, JobSpec

log = logging.getLogger(__name__)

JOBS = "default"  # alias of the persistent job store and of the executor that runs its jobs
INTERNAL = "internal"  # the worker's own housekeeping: in memory, never listed
#: the wait before the next pass when every due row was held by other replicas' passes (no spinning)
HELD_ROWS_WAIT = 0.05
#: a job late by several run times runs once (APScheduler's ``coalesce``), for every job
COALESCE = True
#: seconds before its time that a run is claimed by a pass, to be started at its time (JobScheduler._fire_due)
FIRE_AHEAD = 0.05


class JobScheduler(BackgroundScheduler):  # type: ignore[misc]
    """A BackgroundScheduler whose passes are units of work, and that never touches the job store once
    shutdown has begun.

    APScheduler 3.11's main loop runs ``_process_jobs`` once more after ``shutdown()`` has stopped the executors:
    the submit fails, but the job's next run time is still advanced (or a one-shot job removed), so a run due at
    that moment is lost. Checking the state under the job-store lock closes that window: either a pass started
    before shutdown (and its runs were submitted to live executors, which shutdown waits for) or no pass runs.
    """

    def __init__(
        self,
        store: JobStore,
        transactions: Transactions,
        runner: JobRunner,
        replicas: Replicas,
        state: SchedulerStateStore,
        poll_interval: float,
        fire_ahead: float = 0.0,
        **options: Any,
    ) -> None:
        self.store = store
        #: seconds ahead of their time that runs are claimed (and then started at their time)
        self.fire_ahead = fire_ahead
        self.transactions = transactions
        self.runner = runner
        self.replicas = replicas
        self.cluster_state = state
        self.poll_interval = poll_interval
        #: the unit of work of the pass in progress (set only during a pass, in the scheduler thread)
        self.pass_uow: UnitOfWork | None = None
        #: scheduler passes so far (the loop is idle between passes unless jobs are due)
        self.passes = 0
        #: when the next pass is planned (None: not before a wake-up); read and written under the job-store
        #: lock, like the rows the plan was made from
        self.planned: datetime | None = None
        self._outage = retry.Outage("job store", log)
        super().__init__(jobstore_retry_interval=retry.MAX_DELAY, **options)

    def _process_jobs(self) -> float | None:
        """One pass, one unit of work: the due jobs (at most ``JobStore.due_per_pass``, claimed), their next
        run times, the ledger entries of the runs they start, the records and events of the runs skipped
        and this replica's heartbeat are written in one transaction, and the runs handed to the executor
        only once it committed. A catch-up of thousands of runs costs one commit per hundred. A pass that
        fails is rolled back whole (no run started) and retried about once a second."""
        began = time.monotonic()
        with self._jobstores_lock:
            self.planned = None  # until this pass has planned the next one
            if self.state != STATE_RUNNING:
                return None
            self.passes += 1
            try:
                if self._outage.down:  # probe before APScheduler logs a failed read per attempt
                    ping(self.store.engine)
                with (
                    self.transactions.begin() as uow,
                    self.store.bound(uow.connection),
                    self.store.removing_together(),
                ):
                    if self.replicas.renew_due():
                        if not self.replicas.renew(uow.connection):
                            raise Unavailable(
                                "this replica is not registered (the heartbeat lapsed)"
                            )
                        uow.after_commit(partial(self.replicas.renewed, began))
                    if self.cluster_state.is_paused(uow.connection, lock=True):
                        self.follow(paused=True)  # paused through another replica
                        return None
                    self.pass_uow = uow
                    try:
                        result = self._fire_due()
                        self.store.raise_read_error()
                        self.runner.broken(uow, self.store.take_broken())
                    finally:
                        self.pass_uow = None
            except Exception as exc:
                self.store.take_broken()  # rolled back with the pass
                self._outage.failed(
                    exc.message if isinstance(exc, Unavailable) else short_reason(exc)
                )
                return retry.MAX_DELAY
            self._outage.recovered()
            if result is None:
                wait = self.poll_interval
            elif result <= 0 and not self.store.claimed:
                wait = HELD_ROWS_WAIT  # due rows held by other replicas' passes: look again shortly
            else:
                wait = min(result, self.poll_interval)
            self.planned = datetime.now(UTC) + timedelta(seconds=wait)
            return wait

    def _fire_due(self) -> float | None:
        """APScheduler 3.11's pass (``BaseScheduler._process_jobs``, its rules unchanged) with one addition:
        a job of the store whose next run falls within :data:`FIRE_AHEAD` is claimed now, its run entered
        in the ledger with this pass and started at its time by the executor's alarm clock. A run then
        starts when it is due rather than one pass (a commit) after; the next pass is planned that much
        before the next run time. Returns the seconds until then (None: no job)."""
        now = datetime.now(UTC)
        horizon = now + timedelta(seconds=self.fire_ahead)
        next_wakeup: datetime | None = None
        events: list[JobSubmissionEvent] = []
        for alias, jobstore in self._jobstores.items():
            ahead = alias == JOBS and self.fire_ahead > 0
            try:
                due_jobs = jobstore.get_due_jobs(horizon if ahead else now)
            except Exception as exc:
                # as APScheduler does: logged, looked at again after the retry interval
                log.warning("Error getting due jobs from job store %r: %s", alias, exc)
                retry_at = now + timedelta(seconds=self.jobstore_retry_interval)
                next_wakeup = retry_at if next_wakeup is None else min(next_wakeup, retry_at)
                continue
            for job in due_jobs:
                try:
                    executor = self._lookup_executor(job.executor)
                except BaseException:
                    log.error(
                        "Executor lookup (%r) failed for job %r -- removing it from the job store",
                        job.executor,
                        job.id,
                    )
                    self.remove_job(job.id, alias)
                    continue
                run_times = job._get_run_times(now)
                run_times = run_times[-1:] if run_times and job.coalesce else run_times
                if not run_times and ahead and job.next_run_time <= horizon:
                    run_times = [job.next_run_time]  # due within FIRE_AHEAD: started at its time
                if not run_times:
                    continue
                try:
                    executor.submit_job(job, run_times)
                except MaxInstancesReachedError:
                    log.warning(
                        "Execution of job %r skipped: maximum number of running instances "
                        "reached (%d)",
                        job.id,
                        job.max_instances,
                    )
                    events.append(
                        JobSubmissionEvent(EVENT_JOB_MAX_INSTANCES, job.id, alias, run_times)
                    )
                except BaseException:
                    log.exception("Error submitting job %r to executor %r", job.id, job.executor)
                else:
                    events.append(JobSubmissionEvent(EVENT_JOB_SUBMITTED, job.id, alias, run_times))
                following = job.trigger.get_next_fire_time(run_times[-1], now)
                if following:
                    job._modify(next_run_time=following)
                    jobstore.update_job(job)
                else:
                    self.remove_job(job.id, alias)
            store_next = jobstore.get_next_run_time()
            if store_next is not None:
                store_next = store_next.astimezone(UTC)
                if ahead:
                    store_next -= timedelta(seconds=self.fire_ahead)
                next_wakeup = store_next if next_wakeup is None else min(next_wakeup, store_next)
        for event in events:
            self._dispatch_event(event)
        if next_wakeup is None:
            return None
        return min(max((next_wakeup - datetime.now(UTC)).total_seconds(), 0.0), TIMEOUT_MAX)

    def wakeup(self) -> None:
        """APScheduler wakes the loop whenever a job is added or changed; inside a command's unit of work
        that would only start a pass that waits for the command's lock and reads before its commit.
        Commands wake the loop themselves, after the commit and only when it pays (:meth:`wake_for`)."""
        if self.store.bound_here():
            return
        self.planned = None
        super().wakeup()

    def wake_for(self, moment: datetime) -> None:
        """A job is due at ``moment`` (committed): pass now unless a pass is planned by then anyway."""
        if self.state != STATE_RUNNING:  # paused or stopped: resume and start pass anyway
            return
        planned = self.planned
        if planned is None or moment - timedelta(seconds=self.fire_ahead) < planned:
            self.planned = None
            super().wakeup()

    def follow(self, paused: bool) -> None:
        """Apply the stored pause or resume, made through any replica, to this scheduler."""
        if paused and self.state == STATE_RUNNING:
            self.pause()
            log.warning("scheduler paused (by an operator, through another replica)")
        elif not paused and self.state == STATE_PAUSED:
            self.resume()
            log.info("scheduler resumed (by an operator, through another replica)")


class SchedulerRuntime:
    """Builds the scheduler around the job store and the runner, and runs its lifecycle."""

    def __init__(
        self,
        transactions: Transactions,
        runner: JobRunner,
        ledger: RunLedger,
        replicas: Replicas,
        state: SchedulerStateStore,
        threads: int,
        misfire_grace_time: int | None,
        poll_interval: float,
    ) -> None:
        self.store = JobStore(transactions.engine, replica=ledger.worker)
        self.runner = runner
        self.ledger = ledger
        self.replicas = replicas
        self.executor = JobExecutor(runner, ledger, replicas, JOBS, threads)
        self.store.on_due = self._count_elsewhere
        self.scheduler = JobScheduler(
            self.store,
            transactions,
            runner,
            replicas,
            state,
            poll_interval,
            FIRE_AHEAD,
            jobstores={JOBS: self.store, INTERNAL: MemoryJobStore()},
            executors={JOBS: self.executor, INTERNAL: ThreadPoolExecutor(1)},
            job_defaults={
                "coalesce": COALESCE,
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
            self.runner.stopping.set()  # outcomes that cannot be recorded now are left to the ledger
            self.scheduler.shutdown(wait=wait)

    def new_job(self, spec: JobSpec, meta: dict[str, Any], now: datetime) -> Job:
        """The job ``add_job`` would store for ``spec``, built without storing it (a batch of them is
        inserted with one statement): the same attributes, the job defaults given above, and the first
        run time APScheduler computes when none is given. Built from its state as the job store restores
        one (``Job.__setstate__``): ``Job()`` checks the arguments again, which :meth:`JobSpec.parse` has
        done, and that took six times as long (tests/test_batches.py compares the two)."""
        if spec.paused:
            first: datetime | None = None
        else:
            first = spec.schedule.first_run or spec.schedule.trigger.get_next_fire_time(None, now)
        job = Job.__new__(Job)
        job._scheduler = self.scheduler
        job.__setstate__(
            {
                "version": 1,
                "id": spec.job_id,
                "func": RUNNER_REF,
                "trigger": spec.schedule.trigger,
                "executor": JOBS,
                "args": (spec.handler, meta),
                "kwargs": spec.kwargs,
                "name": spec.handler,
                "misfire_grace_time": spec.misfire_grace_time,
                "coalesce": COALESCE,
                "max_instances": JobOptions.of(meta).max_instances,
                "next_run_time": first,
            }
        )
        # stored (not pending) once the insert commits, as add_job marks the jobs it stores
        job._jobstore_alias = JOBS
        return job

    def _count_elsewhere(self, counts: dict[str, int]) -> None:
        """For ``max_instances`` across replicas: the due jobs' runs in progress on the others (read with
        the claim)."""
        self.executor.elsewhere = counts

    @property
    def running(self) -> bool:
        return bool(self.scheduler.state == STATE_RUNNING)

    @property
    def alive(self) -> bool:
        """The scheduler's thread is there to fire jobs (running or paused, not stopped)."""
        thread = getattr(self.scheduler, "_thread", None)
        return self.scheduler.state != STATE_STOPPED and thread is not None and thread.is_alive()

    def _skipped(self, event: JobSubmissionEvent) -> None:
        """A run not started because the previous one still runs is a missed run, recorded with the pass
        (APScheduler reports it from inside the pass)."""
        uow = self.scheduler.pass_uow
        assert uow is not None, "APScheduler reports skipped runs from inside a pass"
        job = self.store.find(uow.connection, event.job_id)
        handler = handler_of(job) if isinstance(job, Job) else "unknown"
        options = JobOptions.of(meta_of(job) if isinstance(job, Job) else {})
        for run_time in event.scheduled_run_times:
            if options.overlap == "buffer_one":
                if self.runner.runs.buffer(uow.connection, event.job_id, run_time):
                    continue  # started when the running one ends (JobService.start_buffered)
                reason = "overlap buffer_one: the previous run still runs and one run waits already"
            elif options.overlap == "allow":
                reason = f"overlap allow: {options.max_instances} runs in progress already"
            else:
                reason = "the previous run was still in progress"  # as before overlap existed
            self.runner.skipped(uow, event.job_id, handler, run_time, reason)
