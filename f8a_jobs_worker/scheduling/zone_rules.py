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
from f8a_jobs_worker.logs import job_fields
from f8a_jobs_worker.persistence.job_repository import JobRepository
from f8a_jobs_worker.persistence.scheduler_state import SchedulerStateStore
from f8a_jobs_worker.persistence.unit_of_work import UnitOfWork
from f8a_jobs_worker.scheduling.local_trigger import LocalTimeTrigger

log = logging.getLogger(__name__)

#: the ``f8a_scheduler_state`` key of the rules release the stored next run times were computed with
KEY = "tz_rules"


def stored_rules(uow: UnitOfWork, state: SchedulerStateStore) -> str | None:
    """The rules release the stored next run times were computed with (None: not recorded yet)."""
    return state.value(uow, KEY) or None


def follow_rules(uow: UnitOfWork, jobs: JobRepository, state: SchedulerStateStore) -> list[str]:
    """Recompute the next run times of cron and calendar-interval jobs in a zone if the stored ones were
    computed with older rules than this replica's; the ids of the jobs whose next run time moved."""
    current = zones.rules_version()
    state.ensure_value(
        uow, KEY, ""
    )  # so that replicas starting together wait for one another on it
    stored = state.value(uow, KEY, lock=True) or None
    if stored is not None and stored >= current:
        return []
    now = uow.now()
    moved = []
    for job in jobs.scheduled(uow):
        if not isinstance(job.trigger, LocalTimeTrigger) or job.next_run_time is None:
            continue
        if job.next_run_time <= now:
            continue  # due already: it fires as a late run would
        following = job.following(None, now)
        if following != job.next_run_time:
            moved.append(job.moved(following))
    jobs.save(uow, moved)
    state.set_value(uow, KEY, current)
    for job in moved:
        log.warning(
            "job %s: next run time recomputed with time-zone rules %s (were %s): %s",
            job.job_id,
            current,
            stored or "unrecorded",
            job.next_run_time.isoformat() if job.next_run_time else None,
            extra=job_fields(job.job_id, job.handler),
        )
    log.info(
        "time-zone rules %s in use (stored next run times were computed with %s)", current, stored
    )
    return [job.job_id for job in moved]
