"""The service facade: one method per command of docs/messages.md, the in-process API of the worker.

Each method returns the reply's ``result`` object and raises one :class:`~f8a_jobs_worker.errors.JobsError`
subclass per error code; a database that does not answer is :class:`~f8a_jobs_worker.errors.Unavailable`
(nothing was applied, the command can be retried). Every method takes the :class:`UnitOfWork` it is part of
(``uow``, as the command consumer passes a batch's); without one it makes its own. The work is done by
:class:`JobWrites` and :class:`JobReads`; the facade adds the unit of work and the scheduler-wide commands.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from functools import partial
from typing import Any

from f8a_jobs_worker.errors import JobsError
from f8a_jobs_worker.events import Event
from f8a_jobs_worker.events import model as events
from f8a_jobs_worker.logs import job_fields
from f8a_jobs_worker.persistence.database import ping
from f8a_jobs_worker.persistence.job_repository import JobFilter
from f8a_jobs_worker.persistence.notify import STATE, notify
from f8a_jobs_worker.persistence.scheduler_state import SchedulerStateStore
from f8a_jobs_worker.persistence.unit_of_work import Transactions, UnitOfWork
from f8a_jobs_worker.scheduling.job_reads import JobReads
from f8a_jobs_worker.scheduling.job_writes import JobWrites
from f8a_jobs_worker.scheduling.scheduler import Scheduler
from f8a_jobs_worker.scheduling.zone_rules import follow_rules

log = logging.getLogger(__name__)


class JobService:
    """Applies job and scheduler commands to the persistent scheduler."""

    def __init__(
        self,
        transactions: Transactions,
        turns: threading.Lock,
        writes: JobWrites,
        reads: JobReads,
        scheduler: Scheduler,
        state: SchedulerStateStore,
    ) -> None:
        """``turns`` is the lock a scheduler pass of this replica holds: a unit of work that writes takes
        it first, so a command and a pass never wait on each other's row locks."""
        self.transactions = transactions
        self.turns = turns
        self.writes = writes
        self.reads = reads
        self.scheduler = scheduler
        self.state = state

    @contextmanager
    def unit_of_work(self, writes: bool = True) -> Iterator[UnitOfWork]:
        """A unit of work for commands; one that writes takes turns with the scheduler's passes, one that
        only reads takes no lock."""
        with self.turns if writes else nullcontext(), self.transactions.begin(writes) as uow:
            yield uow

    @contextmanager
    def _work(self, uow: UnitOfWork | None, writes: bool = True) -> Iterator[UnitOfWork]:
        if uow is not None:
            yield uow
            return
        with self.unit_of_work(writes) as own:
            yield own

    # -- jobs -----------------------------------------------------------------------------------------------

    def create_job(
        self,
        handler: str,
        kwargs: dict[str, Any] | None = None,
        *,
        replace: bool = False,
        uow: UnitOfWork | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        with self._work(uow) as work:
            return self.writes.create(work, handler, kwargs, replace, **fields)

    def create_jobs(
        self, requests: list[dict[str, Any]], *, uow: UnitOfWork
    ) -> list[dict[str, Any] | JobsError]:
        return self.writes.create_many(uow, requests)

    def get_job(
        self, job_id: str, next_runs: Any = None, *, uow: UnitOfWork | None = None
    ) -> dict[str, Any]:
        with self._work(uow, writes=False) as work:
            return self.reads.get(work, job_id, next_runs)

    def preview_schedule(self, *, uow: UnitOfWork | None = None, **fields: Any) -> dict[str, Any]:
        with self._work(uow, writes=False) as work:
            return self.reads.preview(work, **fields)

    def get_jobs(self, job_ids: list[str], *, uow: UnitOfWork) -> list[dict[str, Any] | JobsError]:
        return self.reads.get_many(uow, job_ids)

    def list_jobs(
        self,
        job_type: str = "all",
        limit: int | None = None,
        offset: int = 0,
        after: str | None = None,
        state: str | None = None,
        handler: str | None = None,
        prefix: str | None = None,
        failing: bool = False,
        *,
        uow: UnitOfWork | None = None,
    ) -> dict[str, Any]:
        where = JobFilter(state, handler, prefix, failing)
        with self._work(uow, writes=False) as work:
            return self.reads.list(work, job_type, limit, offset, after, where)

    def pause_job(self, job_id: str, *, uow: UnitOfWork | None = None) -> dict[str, Any]:
        with self._work(uow) as work:
            return self.writes.pause(work, job_id)

    def resume_job(self, job_id: str, *, uow: UnitOfWork | None = None) -> dict[str, Any]:
        with self._work(uow) as work:
            return self.writes.resume(work, job_id)

    def delete_job(self, job_id: str, *, uow: UnitOfWork | None = None) -> dict[str, Any]:
        with self._work(uow) as work:
            return self.writes.delete(work, job_id)

    def change_jobs(
        self, command: str, job_ids: list[str], *, uow: UnitOfWork
    ) -> list[dict[str, Any] | JobsError]:
        return self.writes.change_many(uow, command, job_ids)

    def run_job_now(self, job_id: str, *, uow: UnitOfWork | None = None) -> dict[str, Any]:
        with self._work(uow) as work:
            return self.writes.run_now(work, job_id)

    def backfill_job(
        self,
        job_id: str,
        start: str,
        end: str,
        concurrency: float = 1,
        *,
        uow: UnitOfWork | None = None,
    ) -> dict[str, Any]:
        with self._work(uow) as work:
            return self.writes.backfill(work, job_id, start, end, concurrency)

    def job_history(
        self,
        job_id: str,
        limit: int = 100,
        after: str | None = None,
        *,
        uow: UnitOfWork | None = None,
    ) -> dict[str, Any]:
        with self._work(uow, writes=False) as work:
            return self.reads.history(work, job_id, limit, after)

    def clean_failed(self, *, uow: UnitOfWork | None = None) -> dict[str, Any]:
        with self._work(uow) as work:
            return self.writes.clean_failed(work)

    # -- $filter queries ------------------------------------------------------------------------------------

    def filter_sql(self, query: Any, *, uow: UnitOfWork | None = None) -> dict[str, Any]:
        return self.reads.filter_sql(query)

    def filter_expand(
        self,
        query: Any,
        limit: int | None = None,
        siblings: dict[str, Any] | None = None,
        *,
        uow: UnitOfWork | None = None,
    ) -> dict[str, Any]:
        return self.reads.filter_expand(query, limit, siblings)

    def analyses_report(
        self,
        ecosystem: str,
        from_date: str | None = None,
        to_date: str | None = None,
        *,
        uow: UnitOfWork | None = None,
    ) -> dict[str, Any]:
        return self.reads.analyses_report(ecosystem, from_date, to_date)

    # -- the whole scheduler --------------------------------------------------------------------------------

    def scheduler_state(self, *, uow: UnitOfWork | None = None) -> dict[str, Any]:
        with self._work(uow, writes=False) as work:
            return self.reads.scheduler_state(work)

    def pause_scheduler(self, *, uow: UnitOfWork | None = None) -> dict[str, Any]:
        """``scheduler.pause``: no job fires until resumed, on any replica, across restarts; commands still
        apply."""
        with self._work(uow) as work:
            self.state.set_paused(work, True)
            notify(work.connection, STATE)
            work.emit(Event(events.SCHEDULER_PAUSED))
            work.after_commit(self.scheduler.pause)
            self.writes.answer_after_claims(work)
            work.after_commit(
                partial(log.warning, "scheduler paused: no job will fire until scheduler.resume")
            )
        return {"state": "paused"}

    def resume_scheduler(self, *, uow: UnitOfWork | None = None) -> dict[str, Any]:
        """``scheduler.resume``."""
        with self._work(uow) as work:
            self.state.set_paused(work, False)
            notify(work.connection, STATE)
            work.emit(Event(events.SCHEDULER_RESUMED))
            work.after_commit(self.scheduler.resume)
            work.after_commit(partial(log.info, "scheduler resumed"))
        return {"state": "running"}

    def start_firing(self) -> None:
        """At start: fire jobs, unless an operator left the scheduler paused (it stays so)."""
        with self.unit_of_work(writes=False) as uow:
            paused = self.state.is_paused(uow)
        if paused:
            log.warning(
                "scheduler stays paused, as an operator left it; send scheduler.resume to fire jobs"
            )
        else:
            self.scheduler.resume()

    def restore_repaired(self) -> None:
        """At start: broken jobs that this deploy can restore again are scheduled again."""
        with self.unit_of_work() as uow:
            for job_id in self.writes.jobs.restore_repaired(uow):
                log.warning(
                    "job %s can be restored again and is scheduled again",
                    job_id,
                    extra=job_fields(job_id),
                )

    def follow_zone_rules(self) -> None:
        """At start: stored next run times of cron jobs in a zone follow this replica's rules if newer."""
        with self.turns:
            follow_rules(self.transactions, self.writes.jobs, self.state)

    def health(self) -> dict[str, Any]:
        """Liveness (the scheduler thread is there) and readiness (the job store answers)."""
        try:
            ping(self.transactions.engine)
            store = "ok"
        except Exception as exc:
            store = str(exc)
        live = self.scheduler.alive
        return {"live": live, "ready": live and store == "ok", "store": store}
