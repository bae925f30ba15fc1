"""Stored next run times follow the time-zone rules in use.

A cron or calendar-interval job in a zone has its next run time stored as an instant, computed with the
rules of the replica that computed it. When a deploy brings newer rules (a country moves its daylight-saving
dates, or drops them), the first replica to start with them recomputes those stored next run times and
records the release it used in ``scheduler.state``. A replica with older rules leaves them alone (an IANA
release name such as ``2026f`` sorts by age), so a rolling deploy does not flip them back and forth. Interval
and one-shot jobs are instants already and are not touched.
"""

from __future__ import annotations

import logging

from f8a_jobs_worker import zones
from f8a_jobs_worker.job import Job
from f8a_jobs_worker.logs import job_fields
from f8a_jobs_worker.persistence.job_repository import JobRepository
from f8a_jobs_worker.persistence.scheduler_state import SchedulerStateStore
from f8a_jobs_worker.persistence.unit_of_work import Transactions, UnitOfWork
from f8a_jobs_worker.scheduling.local_trigger import LocalTimeTrigger

log = logging.getLogger(__name__)

#: the ``f8a_scheduler_state`` key of the rules release the stored next run times were computed with
KEY = "tz_rules"
#: jobs read per transaction while recomputing
PAGE = 1000


def stored_rules(uow: UnitOfWork, state: SchedulerStateStore) -> str | None:
    """The rules release the stored next run times were computed with (None: not recorded yet)."""
    return state.value(uow, KEY) or None


def follow_rules(
    transactions: Transactions, jobs: JobRepository, state: SchedulerStateStore
) -> list[str]:
    """Recompute the next run times of cron and calendar-interval jobs in a zone if the stored ones were
    computed with older rules than this replica's; the ids of the jobs whose next run time moved.

    A store that never recorded a release holds no job in a zone (only a replica that records one creates
    them), so there is nothing to recompute; otherwise the jobs are read a page at a time, each page in a
    transaction of its own, so that a store of millions is neither held in memory nor in one transaction.
    """
    current = zones.rules_version()
    with transactions.begin() as uow:
        state.ensure_value(uow, KEY, "")  # replicas starting together wait for one another on it
        stored = state.value(uow, KEY, lock=True) or None
        if stored is not None and stored >= current:
            return []
        if stored is None:
            state.set_value(uow, KEY, current)
            log.info("time-zone rules %s in use (none recorded before)", current)
            return []
    moved = _recompute(transactions, jobs)
    with transactions.begin() as uow:
        state.set_value(uow, KEY, current)
    for job in moved:
        log.warning(
            "job %s: next run time recomputed with time-zone rules %s (were %s): %s",
            job.job_id,
            current,
            stored,
            job.next_run_time.isoformat() if job.next_run_time else None,
            extra=job_fields(job.job_id, job.handler),
        )
    log.info(
        "time-zone rules %s in use (stored next run times were computed with %s)", current, stored
    )
    return [job.job_id for job in moved]


def _recompute(transactions: Transactions, jobs: JobRepository) -> list[Job]:
    """The zoned jobs whose next run time the current rules move, saved page by page."""
    moved: list[Job] = []
    after: str | None = None
    while True:
        with transactions.begin() as uow:
            page, _, following = jobs.page(uow, "all", PAGE, after=after)
            now = uow.now()
            changed = [
                job.moved(job.following(None, now))
                for job in page
                if isinstance(job, Job)
                and isinstance(job.trigger, LocalTimeTrigger)
                and job.next_run_time is not None
                and job.next_run_time > now  # due already: it fires as a late run would
                and job.following(None, now) != job.next_run_time
            ]
            jobs.save(uow, changed)
        moved += changed
        if following is None:
            return moved
        after = following
