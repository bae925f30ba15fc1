"""A scheduler pass: the due jobs claimed, their runs decided and entered, their next run times written, in one
unit of work.

Every replica runs passes over the same job table. A pass claims the due jobs it fires with ``SELECT ... FOR
UPDATE SKIP LOCKED`` (:meth:`JobRepository.claim_due`) and, in the same transaction, enters their runs in the
ledger, records the runs it skips, advances their next run times (or removes one-shot jobs) and renews the
replica's heartbeat: another replica's pass skips the rows one holds, and once it commits they are no longer
due. So every run time is fired by one replica, and a pass that fails (the replica killed, cut off) is rolled
back whole and its rows are free again. The stored ``scheduler.pause`` is read in every pass under a share
lock, so a pass and a pause are ordered: once the pause has committed, no replica's pass fires anything.

A pass also claims the runs due within :data:`FIRE_AHEAD`, which the executor starts at their time: a run
then starts when it is due rather than one pass (a commit) after (docs/architecture.md, "Runs claimed
ahead"). The rules for a job with runs due are APScheduler's: its run times up to now, coalesced to the
latest (every job coalesces), each checked against the grace time when it starts, and the next run time
computed by the trigger from the last of them.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from f8a_jobs_worker.errors import Unavailable
from f8a_jobs_worker.events import Event
from f8a_jobs_worker.events import model as events
from f8a_jobs_worker.job import BrokenJob, Job
from f8a_jobs_worker.logs import job_fields
from f8a_jobs_worker.persistence.job_repository import JobRepository
from f8a_jobs_worker.persistence.replicas import Replicas
from f8a_jobs_worker.persistence.runs import RunStore
from f8a_jobs_worker.persistence.scheduler_state import SchedulerStateStore
from f8a_jobs_worker.persistence.unit_of_work import Transactions, UnitOfWork
from f8a_jobs_worker.scheduling.executor import RunExecutor
from f8a_jobs_worker.scheduling.outcomes import Outcomes

log = logging.getLogger(__name__)

#: seconds before its time that a run is claimed by a pass, to be started at its time
FIRE_AHEAD = 0.05


@dataclass(frozen=True)
class Passed:
    """What a pass found: paused (nothing fired), how many due jobs it claimed, and the earliest next run
    time left in the store (None: no job runs again)."""

    paused: bool = False
    claimed: int = 0
    next_run_time: datetime | None = None


class Firing:
    """Fires due jobs, one pass at a time. ``turns`` is the lock that command batches of this replica that
    write take too: a pass and a command of one replica never wait on each other's row locks."""

    def __init__(
        self,
        transactions: Transactions,
        turns: threading.Lock,
        jobs: JobRepository,
        runs: RunStore,
        outcomes: Outcomes,
        executor: RunExecutor,
        replicas: Replicas,
        state: SchedulerStateStore,
        fire_ahead: float = FIRE_AHEAD,
    ) -> None:
        self.transactions = transactions
        self.turns = turns
        self.jobs = jobs
        self.runs = runs
        self.outcomes = outcomes
        self.executor = executor
        self.replicas = replicas
        self.state = state
        #: seconds ahead of their time that runs are claimed (and then started at their time)
        self.fire_ahead = fire_ahead

    def run(self) -> Passed:
        """One pass: everything it decides is one transaction, the runs handed to the executor only once
        it committed. A catch-up of thousands of runs costs one commit per hundred."""
        began = time.monotonic()
        with self.turns, self.transactions.begin() as uow:
            self._renew(uow, began)
            if self.state.is_paused(uow, lock=True):
                return Passed(paused=True)
            now = uow.now()
            claim = self.jobs.claim_due(uow, now + timedelta(seconds=self.fire_ahead))
            self._report_broken(uow, claim.broken)
            moved: list[Job] = []
            fired: list[str] = []
            for job in claim.jobs:
                following = self._fire(uow, job, now, claim.elsewhere.get(job.job_id, 0))
                if following is None:
                    fired.append(job.job_id)
                else:
                    moved.append(job.moved(following))
            next_run_time = self.jobs.advance(uow, moved, fired)
        return Passed(claimed=len(claim.jobs), next_run_time=next_run_time)

    def fire_created(self, uow: UnitOfWork, new: list[Job]) -> list[Job]:
        """New jobs whose first run is due (a periodic job without ``when``): each run entered in the unit
        of work that creates the job and started once it commits, as the pass after that commit would have
        (a run sooner, a pass fewer: no claim, no second write of the row); the jobs as they are to be
        stored. Jobs that run once (fired, they are removed) and everything while the stored scheduler
        state is paused are left to the passes."""
        now = uow.now()
        until = now + timedelta(seconds=self.fire_ahead)
        due = {
            j.job_id: j.next_run_time for j in new if j.next_run_time and j.next_run_time <= until
        }
        if not due or self.state.is_paused(uow, lock=True):
            return new
        stored = []
        for job in new:
            first = due.get(job.job_id)
            following = None if first is None else job.following(first, now)
            # not reserved: a run of a job of that id, deleted meanwhile, still runs (left to the passes)
            if first and following and self.executor.reserve(job.job_id, job.max_instances):
                self.executor.start_after_commit(uow, job, [first])
                job = job.moved(following)
            stored.append(job)
        return stored

    def _renew(self, uow: UnitOfWork, began: float) -> None:
        """Renew this replica's heartbeat with the pass, unless a renewal committed within the heartbeat
        interval (a catch-up's passes do not each write it)."""
        if not self.replicas.renew_due():
            return
        if not self.replicas.renew(uow):
            raise Unavailable("this replica is not registered (the heartbeat lapsed)")
        uow.after_commit(partial(self.replicas.renewed, began))

    def _fire(self, uow: UnitOfWork, job: Job, now: datetime, elsewhere: int) -> datetime | None:
        """Decide the runs of one due job; return its next run time (None: remove it)."""
        times = job.due_times(now)
        if times and job.coalesce:
            times = times[-1:]
        if not times and job.next_run_time is not None:
            times = [job.next_run_time]  # due within the claim window: started at its time
        if self.executor.reserve(job.job_id, job.max_instances, elsewhere):
            self.executor.start_after_commit(uow, job, times)
        else:
            self._skip(uow, job, times)
        return job.following(times[-1], now)

    def _skip(self, uow: UnitOfWork, job: Job, times: list[datetime]) -> None:
        """Runs not started because ``max_instances`` of the job run already: kept (``buffer_one``, one run),
        else recorded missed with the policy that missed them."""
        options = job.options
        for run_time in times:
            if options.overlap == "buffer_one":
                if self.runs.buffer(uow, job.job_id, run_time):
                    continue  # started when the running one ends (RunExecutor.start_kept)
                reason = "overlap buffer_one: the previous run still runs and one run waits already"
            elif options.overlap == "allow":
                reason = f"overlap allow: {options.max_instances} runs in progress already"
            else:
                reason = "the previous run was still in progress"
            self.outcomes.missed(uow, job, run_time, reason)

    @staticmethod
    def _report_broken(uow: UnitOfWork, broken: list[BrokenJob]) -> None:
        """Jobs found broken when they fell due: told once, kept until deleted or replaced."""
        for job in broken:
            fields = {"handler": job.handler, "error": job.reason}
            uow.emit(Event(events.JOB_BROKEN, job.job_id, fields))
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
