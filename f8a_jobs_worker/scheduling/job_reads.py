"""The commands that only read: ``job.get``, ``job.list``, ``job.history``, ``scheduler.state``,
``schedule.preview``, the
``$filter`` commands and ``report.analyses``. They take no lock and store no reply: a long ``filter.expand``
never holds up firing, and a read sent again is answered afresh."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from f8a_jobs_worker import zones
from f8a_jobs_worker.errors import FilterError, JobNotFound, JobsError, ValidationFailed
from f8a_jobs_worker.filters.query import FilterRunner
from f8a_jobs_worker.filters.report import analyses_report
from f8a_jobs_worker.job import BrokenJob
from f8a_jobs_worker.persistence import schema
from f8a_jobs_worker.persistence.job_repository import PAGE_CACHE, JobFilter, JobRepository
from f8a_jobs_worker.persistence.ledger import RunLedger
from f8a_jobs_worker.persistence.replicas import Replicas
from f8a_jobs_worker.persistence.runs import RunStore
from f8a_jobs_worker.persistence.scheduler_state import SchedulerStateStore
from f8a_jobs_worker.persistence.unit_of_work import UnitOfWork
from f8a_jobs_worker.scheduling import preview as previews
from f8a_jobs_worker.scheduling.preview import check_count
from f8a_jobs_worker.scheduling.schedule import build_schedule
from f8a_jobs_worker.scheduling.view import RecentViews, job_view
from f8a_jobs_worker.scheduling.zone_rules import stored_rules
from f8a_jobs_worker.validation import CONTRACT_VERSION

JOB_TYPES = ("all", "user", "default", "failed")
#: what ``scheduler.state`` says of access where no gate was built (a worker without messaging)
NO_POLICY: dict[str, Any] = {
    "policy": "none",
    "policy_source": None,
    "signing": "off",
    "signing_keys": [],
}
DEFAULT_PAGE = 100
MAX_PAGE = 1000


class JobReads:
    def __init__(
        self,
        jobs: JobRepository,
        runs: RunStore,
        ledger: RunLedger,
        replicas: Replicas,
        state: SchedulerStateStore,
        filters: FilterRunner | None,
        access: Callable[[], dict[str, Any]] = lambda: NO_POLICY,
    ) -> None:
        """``access``: the policy and signing in force, as ``scheduler.state`` shows them."""
        self.jobs = jobs
        self.runs = runs
        self.ledger = ledger
        self.replicas = replicas
        self.state = state
        self.filters = filters
        self.access = access
        #: the views of recent pages' jobs, as many as the repository keeps restored
        self._views = RecentViews(PAGE_CACHE)

    def get(self, uow: UnitOfWork, job_id: str, next_runs: Any = None) -> dict[str, Any]:
        """``job.get``; a job that cannot be restored is shown as ``broken``. With ``next_runs``, its next
        runs as ``schedule.preview`` lists them (none while paused or broken)."""
        count = None if next_runs is None else check_count(next_runs, "next_runs")
        found = self.jobs.find(uow, job_id)
        if found is None:
            raise JobNotFound.of(job_id)
        if count is None:
            return {"job": job_view(found)}
        runs = [] if isinstance(found, BrokenJob) else previews.next_runs(found, count)
        return {"job": job_view(found), "next_runs": runs}

    def preview(
        self,
        uow: UnitOfWork,
        start: Any = None,
        count: Any = previews.DEFAULT_COUNT,
        **fields: Any,
    ) -> dict[str, Any]:
        """``schedule.preview``: the next ``count`` runs a job with this schedule (``cron``,
        ``periodically`` or ``calendar_interval``, with ``timezone`` and ``jitter``) would have."""
        count = check_count(count, "count")
        if not {"cron", "periodically", "calendar_interval"} & set(fields):
            message = "give cron, periodically or calendar_interval"
            raise ValidationFailed(message, [{"path": "$.cron", "message": message}])
        now = uow.now()
        return previews.preview(build_schedule(**fields, when=start, now=now), now, count)

    def get_many(self, uow: UnitOfWork, job_ids: list[str]) -> list[dict[str, Any] | JobsError]:
        """Several ``job.get`` answered from one query, each with its result or ``job_not_found``."""
        found = self.jobs.find_many(uow, job_ids)
        return [
            {"job": job_view(found[job_id])} if job_id in found else JobNotFound.of(job_id)
            for job_id in job_ids
        ]

    def list(
        self,
        uow: UnitOfWork,
        job_type: str = "all",
        limit: int | None = None,
        offset: int = 0,
        after: str | None = None,
        where: JobFilter | None = None,
    ) -> dict[str, Any]:
        """``job.list``: a page of jobs (``limit`` defaults to 100, at most 1000), narrowed by ``where``,
        the total count of the type, and ``next``, the key to pass as ``after`` for the following page
        (absent on the last)."""
        if job_type not in JOB_TYPES:
            raise ValidationFailed(
                f"job_type must be one of {', '.join(JOB_TYPES)}",
                [
                    {
                        "path": "$.job_type",
                        "message": f"{job_type!r} is not one of {list(JOB_TYPES)}",
                    }
                ],
            )
        # JSON Schema's integers include 1.0: a float would not do as a slice index
        page = min(DEFAULT_PAGE if limit is None else max(int(limit), 0), MAX_PAGE)
        offset = max(int(offset), 0)
        if job_type == "failed":
            if where:
                raise ValidationFailed(
                    "state, handler, prefix and failing narrow jobs, not failure records",
                    [{"path": "$.job_type", "message": "filters do not apply to failed"}],
                )
            failures, total, following = self.runs.failures(uow, page, offset, after)
            return _page({"jobs": failures, "jobs_count": total}, following)
        jobs, total, following = self.jobs.page(uow, job_type, page, offset, after, where)  # type: ignore[arg-type]
        found = {"jobs": [self._views.of(job) for job in jobs], "jobs_count": total}
        return _page({**found, "filtered": True} if where else found, following)

    def history(
        self, uow: UnitOfWork, job_id: str, limit: int = 100, after: str | None = None
    ) -> dict[str, Any]:
        """``job.history``: the latest run outcomes of a job, newest first (kept within the history
        retention), and ``next`` for the older ones (absent on the last page)."""
        runs, following = self.runs.history(uow, job_id, min(max(int(limit), 1), MAX_PAGE), after)
        return _page({"runs": runs}, following)

    def scheduler_state(self, uow: UnitOfWork) -> dict[str, Any]:
        """``scheduler.state``: running or paused, runs in progress, the outbox's backlog, the replicas
        sharing the store (this one marked) and the store's schema revision."""
        replicas = self.replicas
        pending, oldest = uow.outbox.backlog(uow.connection, uow.now())
        now = replicas.now(uow)
        return {
            "state": "paused" if self.state.is_paused(uow) else "running",
            "runs_in_progress": self.ledger.running(uow),
            "outbox": {"pending": pending, "oldest_age_s": round(oldest, 3)},
            "replica": replicas.replica_id,
            "replicas": [
                view.to_dict(runs, now, replicas.replica_id) for view, runs in replicas.all(uow)
            ],
            "schema": {"store": schema.current(uow.connection), "release": schema.head()},
            "tz_rules": {"store": stored_rules(uow, self.state), "replica": zones.rules_version()},
            "access": self.access(),
            "contract": CONTRACT_VERSION,
        }

    # -- $filter queries and the analyses report -------------------------------------------------------------

    def _filter_runner(self) -> FilterRunner:
        if self.filters is None:
            raise FilterError("no analytics database is configured for $filter queries")
        return self.filters

    def filter_sql(self, query: Any) -> dict[str, Any]:
        """``filter.sql``: the SQL of a ``$filter`` query and its bound parameters."""
        return self._filter_runner().sql(query, path="$.$filter")

    def filter_expand(
        self, query: Any, limit: int | None = None, siblings: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """``filter.expand``: the rows a ``$filter`` query matches (capped, see FilterRunner.expand), each
        with the ``siblings`` merged in as a flow argument's are."""
        return self._filter_runner().expand(query, limit, path="$.$filter", siblings=siblings)

    def analyses_report(
        self, ecosystem: str, from_date: str | None = None, to_date: str | None = None
    ) -> dict[str, Any]:
        """``report.analyses``: counts of an ecosystem's analyses, as the original's analyses report."""
        return analyses_report(self._filter_runner(), ecosystem, from_date, to_date)


def _page(result: dict[str, Any], following: str | None) -> dict[str, Any]:
    """A listing's result, with ``next`` when there is a following page."""
    if following is not None:
        result["next"] = following
    return result
