"""How a job is stored in APScheduler and how it is shown on the wire (the job view of docs/messages.md).

A stored job is ``func=RUNNER_REF, args=(handler_name, meta), kwargs=handler_kwargs``. The function reference is
always the same module-level runner; the handler is named, never imported from input. ``meta`` holds what the
trigger cannot: whether the job came from ``default_jobs/`` and, for those, the definition last applied.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from apscheduler.job import Job
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from f8a_jobs_worker.persistence.jobstore import BrokenJob
from f8a_jobs_worker.scheduling.spec import JobOptions

RUNNER_REF = "f8a_jobs_worker.scheduling.runner:run_job"


def handler_of(job: Job) -> str:
    return str(job.args[0])


def meta_of(job: Job) -> dict[str, Any]:
    meta = job.args[1] if len(job.args) > 1 else {}
    return dict(meta)


def state_of(job: Job) -> str:
    """``pending`` until the scheduler has computed a first run time, ``paused`` without one."""
    if job.pending:
        return "pending"
    return "paused" if job.next_run_time is None else "running"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def job_view(job: Job | BrokenJob) -> dict[str, Any]:
    """The job as commands return it; a broken job with state ``broken`` and ``error`` saying why."""
    if isinstance(job, BrokenJob):
        return {
            "job_id": job.job_id,
            "handler": job.handler,
            "kwargs": {},
            "state": "broken",
            "when": None,
            "periodically": None,
            "periodically_seconds": None,
            "cron": None,
            "jitter": None,
            "next_run_time": None,
            "misfire_grace_time": None,
            "default": job.default,
            "on_interrupt": "report",
            "pause_after_failures": None,
            "overlap": "skip",
            "overlap_limit": None,
            "error": job.reason,
        }
    trigger = job.trigger
    meta = meta_of(job)
    when: datetime | None = None
    periodically: timedelta | None = None
    if isinstance(trigger, IntervalTrigger):
        when, periodically = trigger.start_date, trigger.interval
    elif isinstance(trigger, DateTrigger):
        when = trigger.run_date
    elif isinstance(trigger, CronTrigger):
        when = trigger.start_date
    return {
        "job_id": job.id,
        "handler": handler_of(job),
        "kwargs": dict(job.kwargs),
        "state": state_of(job),
        "when": _iso(when),
        "periodically": str(periodically) if periodically else None,
        "periodically_seconds": int(periodically.total_seconds()) if periodically else None,
        "cron": meta.get("cron"),
        "jitter": getattr(trigger, "jitter", None),
        "next_run_time": None if job.pending else _iso(job.next_run_time),
        "misfire_grace_time": job.misfire_grace_time,
        "default": bool(meta.get("default")),
        **JobOptions.of(meta).meta(),
    }
