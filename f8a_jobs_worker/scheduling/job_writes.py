"""The commands that change jobs: ``job.create``, ``job.pause``, ``job.resume``, ``job.delete``,
``job.run_now``, ``job.backfill``, ``jobs.clean_failed``; one at a time, and the set-based form of a run of
creates, pauses, resumes or deletes in a batch.

Each method writes on the unit of work it is given: the job rows (through the job repository), the events it
causes, and, registered to happen after the commit, what has an effect outside the database (waking the
scheduler, starting a run, a log line). A method returns the reply's ``result`` or raises the
:class:`~f8a_jobs_worker.errors.JobsError` of the reply's error code.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import sqlalchemy as sa

from f8a_jobs_worker.errors import JobBusy, JobExists, JobNotFound, JobsError, ValidationFailed
from f8a_jobs_worker.events import Event
from f8a_jobs_worker.events import model as events
from f8a_jobs_worker.flows.backend import FlowBackend
from f8a_jobs_worker.handlers import HandlerRegistry
from f8a_jobs_worker.job import BrokenJob, Job
from f8a_jobs_worker.lifecycle import Doorbell
from f8a_jobs_worker.logs import job_fields
from f8a_jobs_worker.moments import parse_iso
from f8a_jobs_worker.persistence.backfill_store import BackfillStore
from f8a_jobs_worker.persistence.database import store_errors
from f8a_jobs_worker.persistence.job_repository import JobRepository
from f8a_jobs_worker.persistence.ledger import RunLedger
from f8a_jobs_worker.persistence.notify import WAKE, notify
from f8a_jobs_worker.persistence.runs import RunStore
from f8a_jobs_worker.persistence.unit_of_work import UnitOfWork
from f8a_jobs_worker.scheduling.backfill_runs import MAX_CONCURRENCY, run_times
from f8a_jobs_worker.scheduling.executor import RunExecutor
from f8a_jobs_worker.scheduling.scheduler import Scheduler
from f8a_jobs_worker.scheduling.spec import OPTION_FIELDS, JobSpec, parse_options
from f8a_jobs_worker.scheduling.view import job_view

log = logging.getLogger(__name__)


class JobWrites:
    def __init__(
        self,
        registry: HandlerRegistry,
        jobs: JobRepository,
        runs: RunStore,
        ledger: RunLedger,
        backfills: BackfillStore,
        executor: RunExecutor,
        scheduler: Scheduler,
        backfill_bell: Doorbell,
        default_grace_time: int | None,
        flows: FlowBackend | None,
    ) -> None:
        """``backfill_bell`` wakes the backfill driver once a backfill is stored; ``flows``: the flow
        backend a flow job's flow and task names are checked against (None: not checked)."""
        self.registry = registry
        self.jobs = jobs
        self.runs = runs
        self.ledger = ledger
        self.backfills = backfills
        self.executor = executor
        self.scheduler = scheduler
        self.backfill_bell = backfill_bell
        self.default_grace_time = default_grace_time
        self.flows = flows

    # -- creating ------------------------------------------------------------------------------------------

    def parse(
        self, handler: str, kwargs: dict[str, Any] | None, fields: dict[str, Any], now: datetime
    ) -> tuple[JobSpec, dict[str, Any]]:
        """A ``job.create``'s job and the meta stored with it (its options); the request's errors."""
        options = parse_options(fields)
        spec = JobSpec.parse(
            self.registry,
            self.default_grace_time,
            flows=self.flows,
            handler=handler,
            kwargs=kwargs,
            now=now,
            **{k: v for k, v in fields.items() if k not in OPTION_FIELDS},
        )
        return spec, {"default": False, **spec.schedule.meta(), **options.meta()}

    @staticmethod
    def new_job(spec: JobSpec, meta: dict[str, Any], now: datetime) -> Job:
        """The job ``spec`` describes, with its first run time (none when paused; ``when`` or now where the
        schedule says so, else the trigger's first from now)."""
        job = Job(
            spec.job_id,
            spec.handler,
            spec.kwargs,
            spec.schedule.trigger,
            meta,
            spec.misfire_grace_time,
            None,
        )
        if spec.paused:
            return job
        return job.moved(spec.schedule.first_run or job.following(None, now))

    def create(
        self,
        uow: UnitOfWork,
        handler: str,
        kwargs: dict[str, Any] | None = None,
        replace: bool = False,
        **fields: Any,
    ) -> dict[str, Any]:
        """``job.create``: add a job, or replace one with ``replace``; ``job_exists`` otherwise."""
        spec, meta = self.parse(handler, kwargs, fields, uow.now())
        meta = _created(uow, meta)
        existed = replace and self.jobs.find(uow, spec.job_id) is not None
        job = self.store(uow, self.new_job(spec, meta, uow.now()), replace)
        if existed:
            self.runs.forget(uow, [spec.job_id])
        view = job_view(job)
        uow.emit(
            Event(events.JOB_UPDATED if existed else events.JOB_CREATED, job.job_id, {"job": view})
        )
        return {"job": view}

    def create_many(
        self, uow: UnitOfWork, requests: list[dict[str, Any]]
    ) -> list[dict[str, Any] | JobsError]:
        """Several ``job.create`` without ``replace``, in order, with set-based statements: one look for
        the ids that exist, one insert of the new rows. Each request gets its result or its error, as
        :meth:`create` would have given it. Nothing here fails after its checks except the insert, and only
        if another replica inserted one of the ids meanwhile: that fails the whole unit of work (the caller
        applies it again one by one)."""
        outcomes: list[dict[str, Any] | JobsError] = []
        specs: list[tuple[int, JobSpec, dict[str, Any]]] = []
        now = uow.now()
        for index, request in enumerate(requests):
            fields = dict(request)
            try:
                spec, meta = self.parse(
                    fields.pop("handler"), fields.pop("kwargs", None), fields, now
                )
            except JobsError as exc:
                outcomes.append(exc)
                continue
            outcomes.append({})
            specs.append((index, spec, _created(uow, meta)))
        taken = self.jobs.existing(uow, [spec.job_id for _, spec, _ in specs])
        new: list[Job] = []
        places: list[int] = []
        for index, spec, meta in specs:
            if spec.job_id in taken:
                outcomes[index] = JobExists.of(spec.job_id)
                continue
            taken.add(spec.job_id)  # a second create of the id later in the batch
            new.append(self.new_job(spec, meta, now))
            places.append(index)
        new = self.scheduler.fire_created(uow, new)
        for index, job in zip(places, new, strict=True):
            view = job_view(job)
            outcomes[index] = {"job": view}
            uow.emit(Event(events.JOB_CREATED, job.job_id, {"job": view}))
        with store_errors("job store"):
            self.jobs.insert(uow, new)
        self.wake_after(uow, min((j.next_run_time for j in new if j.next_run_time), default=None))
        uow.after_commit(partial(_log_added, new, False))
        return outcomes

    def store(self, uow: UnitOfWork, job: Job, replace: bool = False) -> Job:
        """Write a new or replacing job (``job_exists`` for an id taken, without ``replace``); a new one with
        its first run started with ``uow`` where it is due at once (:meth:`Scheduler.fire_created`)."""
        with store_errors("job store"):
            if not (replace and self.jobs.save(uow, [job])):
                if self.jobs.existing(uow, [job.job_id]):  # checked first: a failed INSERT would
                    raise JobExists.of(job.job_id)  # abort a shared transaction
                (job,) = self.scheduler.fire_created(uow, [job])
                try:
                    self.jobs.insert(uow, [job])
                except sa.exc.IntegrityError:
                    raise JobExists.of(job.job_id) from None
        if replace:
            self.answer_after_claims(uow)
        self.wake_after(uow, job.next_run_time)
        uow.after_commit(partial(_log_added, [job], replace))
        return job

    # -- pausing, resuming, deleting -------------------------------------------------------------------------

    def pause(self, uow: UnitOfWork, job_id: str) -> dict[str, Any]:
        """``job.pause``: no run until resumed; the schedule is kept."""
        job = _changed(uow, self.require(uow, job_id).moved(None))
        self.jobs.save(uow, [job])
        uow.emit(Event(events.JOB_PAUSED, job_id))
        self.answer_after_claims(uow)
        return {"job": job_view(job)}

    def resume(self, uow: UnitOfWork, job_id: str) -> dict[str, Any]:
        """``job.resume``: the next run is computed from the schedule as of now (a schedule with no run
        left removes the job, announced as deleted); its count of consecutive failures starts again."""
        job = self.require(uow, job_id)
        job = _changed(uow, job.moved(job.following(None, uow.now())))
        if job.next_run_time is None:
            self.jobs.delete(uow, [job_id])
            self.runs.forget(uow, [job_id])
            uow.emit(Event(events.JOB_DELETED, job_id))
            return {"job": job_view(job)}
        self.jobs.save(uow, [job])
        self.runs.clear_streaks(uow, [job_id])
        uow.emit(Event(events.JOB_RESUMED, job_id))
        self.wake_after(uow, job.next_run_time)
        return {"job": job_view(job)}

    def delete(self, uow: UnitOfWork, job_id: str) -> dict[str, Any]:
        """``job.delete``."""
        with store_errors("job store"):
            if not self.jobs.delete(uow, [job_id]):
                raise JobNotFound.of(job_id)
        self.answer_after_claims(uow)
        self.runs.forget(uow, [job_id])
        self.backfills.forget_jobs(uow, [job_id])
        uow.emit(Event(events.JOB_DELETED, job_id))
        return {"removed": [job_id]}

    def change_many(
        self, uow: UnitOfWork, command: str, job_ids: list[str]
    ) -> list[dict[str, Any] | JobsError]:
        """Several ``job.pause``, ``job.resume`` or ``job.delete`` (``command``; each job at most once),
        with set-based statements: one read of the jobs, one update or delete of their rows, one statement
        for what goes with them. Each gets the result or error :meth:`pause`, :meth:`resume` or
        :meth:`delete` would have given it."""
        found = self.jobs.find_many(uow, job_ids)
        if command != "job.resume":
            self.answer_after_claims(uow)
        now = uow.now()
        outcomes: list[dict[str, Any] | JobsError] = []
        changed: list[Job] = []
        for job_id in job_ids:
            job = found.get(job_id)
            if job is None:
                outcomes.append(JobNotFound.of(job_id))
            elif command == "job.delete":
                outcomes.append({"removed": [job_id]})
                uow.emit(Event(events.JOB_DELETED, job_id))
            elif isinstance(job, BrokenJob):
                outcomes.append(job.refusal())
            elif command == "job.resume" and job.following(None, now) is None:
                outcomes.append(self.resume(uow, job_id))  # no run left: as resume() removes it
            else:
                resumed = command == "job.resume"
                job = _changed(uow, job.moved(job.following(None, now) if resumed else None))
                changed.append(job)
                outcomes.append({"job": job_view(job)})
                uow.emit(Event(events.JOB_RESUMED if resumed else events.JOB_PAUSED, job_id))
        with store_errors("job store"):
            if command == "job.delete":
                gone = [job_id for job_id in job_ids if job_id in found]
                self.jobs.delete(uow, gone)
                self.runs.forget(uow, gone)
                self.backfills.forget_jobs(uow, gone)
                return outcomes
            self.jobs.save(uow, changed)
        if command == "job.resume":
            self.runs.clear_streaks(uow, [job.job_id for job in changed])
            self.wake_after(
                uow, min((j.next_run_time for j in changed if j.next_run_time), default=None)
            )
        return outcomes

    # -- running now ----------------------------------------------------------------------------------------

    def run_now(self, uow: UnitOfWork, job_id: str) -> dict[str, Any]:
        """``job.run_now``: run the handler once the command has committed, even if paused; the schedule
        is unchanged. A run already in progress is ``job_busy`` (the job's overlap allows no more)."""
        job = self.require(uow, job_id, lock=True)  # ordered with any replica's pass firing it
        elsewhere = self.ledger.running_elsewhere(uow, [job_id]).get(job_id, 0)
        if not self.executor.reserve(job_id, job.max_instances, elsewhere):
            raise JobBusy(f"job {job_id!r} is running now; try again when it has finished")
        by = uow.actor.to_dict() if uow.actor else None
        self.executor.start_after_commit(uow, job, [uow.now()], started_by=by)
        uow.after_commit(
            partial(
                log.info,
                "job %s (%s) submitted to run now",
                job_id,
                job.handler,
                extra=job_fields(job_id, job.handler),
            )
        )
        return {"job": job_view(job)}

    def backfill(
        self, uow: UnitOfWork, job_id: str, start: str, end: str, concurrency: float = 1
    ) -> dict[str, Any]:
        """``job.backfill``: run every run the job's schedule had in ``[start, end)``, in order, at most
        ``concurrency`` at a time (paused or not; regular runs go on); bounds without an offset are read
        in the job's zone."""
        if not (float(concurrency).is_integer() and 1 <= concurrency <= MAX_CONCURRENCY):
            raise ValidationFailed(
                f"concurrency must be 1 to {MAX_CONCURRENCY}",
                [{"path": "$.concurrency", "message": f"expected 1 to {MAX_CONCURRENCY}"}],
            )
        job = self.require(uow, job_id)
        begin, finish = parse_iso(start, "start", job.timezone), parse_iso(end, "end", job.timezone)
        times = run_times(job, begin, finish, uow.now())
        backfill_id = None
        if times:
            by = uow.actor.to_dict() if uow.actor else None
            backfill_id = self.backfills.create(uow, job_id, times, int(concurrency), by)
            uow.after_commit(self.backfill_bell.ring)
        uow.after_commit(
            partial(
                log.info,
                "job %s: backfill %s of %d runs from %s to %s, %d at a time",
                job_id,
                backfill_id,
                len(times),
                begin.isoformat(),
                finish.isoformat(),
                int(concurrency),
                extra=job_fields(job_id, job.handler),
            )
        )
        return {
            "backfill_id": backfill_id,
            "job_id": job_id,
            "runs": len(times),
            "first": times[0].isoformat() if times else None,
            "last": times[-1].isoformat() if times else None,
        }

    def clean_failed(self, uow: UnitOfWork) -> dict[str, Any]:
        """``jobs.clean_failed``: remove every failure record."""
        removed = self.runs.clean_failures(uow)
        uow.after_commit(partial(log.info, "removed %d failure records", len(removed)))
        return {"removed": removed}

    # -- helpers --------------------------------------------------------------------------------------------

    def require(self, uow: UnitOfWork, job_id: str, lock: bool = False) -> Job:
        """The job; ``job_not_found``, or ``job_broken`` for one that cannot be restored."""
        found = self.jobs.find(uow, job_id, lock)
        if found is None:
            raise JobNotFound.of(job_id)
        if isinstance(found, BrokenJob):
            raise found.refusal()
        return found

    def wake_after(self, uow: UnitOfWork, due: datetime | None) -> None:
        """A job that falls due at ``due`` was written in an open transaction, invisible to the schedulers
        until it commits. Other replicas pass at least every poll interval, so a notification sent with
        the commit is needed only for a job due sooner (one per unit of work); this replica's scheduler is
        woken after the commit unless it plans a pass by then anyway. A paused job wakes nobody."""
        if due is None:
            return
        soon = uow.now() + timedelta(seconds=self.scheduler.poll_interval)
        if due <= soon and uow.first_time("notify"):
            notify(uow.connection, WAKE)
        uow.after_commit(partial(self.scheduler.wake_for, due))

    def answer_after_claims(self, uow: UnitOfWork) -> None:
        """A command that stops runs is answered only once the runs claimed ahead before it committed are
        due (the scheduler's ``fire_ahead``, at most 50 ms): no run due after its reply fires, on any
        replica."""
        ahead = self.scheduler.fire_ahead
        if ahead > 0 and uow.first_time("answer after claims"):
            uow.after_commit(partial(time.sleep, ahead))


def _created(uow: UnitOfWork, meta: dict[str, Any]) -> dict[str, Any]:
    """A new job's meta with who created it (the command's principal)."""
    return meta if uow.actor is None else {**meta, "created_by": uow.actor.to_dict()}


def _changed(uow: UnitOfWork, job: Job) -> Job:
    """A paused or resumed job with who did it."""
    return job.state_changed(uow.actor.to_dict() if uow.actor else None, uow.now())


def _log_added(jobs: list[Job], replaced: bool) -> None:
    for job in jobs:
        log.info(
            "job %s (%s) %s: next run %s",
            job.job_id,
            job.handler,
            "replaced" if replaced else "added",
            job.next_run_time,
            extra=job_fields(job.job_id, job.handler),
        )
