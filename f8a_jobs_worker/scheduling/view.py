"""How a job is shown on the wire: the job view of docs/messages.md (schemas/job.json)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Any

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from f8a_jobs_worker import zones
from f8a_jobs_worker.job import BrokenJob, Job, JobOptions
from f8a_jobs_worker.scheduling.local_trigger import LocalTimeTrigger


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
            "calendar_interval": None,
            "jitter": None,
            "next_run_time": None,
            "timezone": None,
            "next_run_time_local": None,
            "misfire_grace_time": None,
            "default": job.default,
            **JobOptions().meta(),
            "created_by": None,
            "state_changed_by": None,
            "state_changed_at": None,
            "error": job.reason,
        }
    trigger = job.trigger
    when: datetime | None = None
    periodically: timedelta | None = None
    if isinstance(trigger, IntervalTrigger):
        when, periodically = trigger.start_date, trigger.interval
    elif isinstance(trigger, DateTrigger):
        when = trigger.run_date
    elif isinstance(trigger, CronTrigger | LocalTimeTrigger):
        when = trigger.start_date
    return {
        "job_id": job.job_id,
        "handler": job.handler,
        "kwargs": dict(job.kwargs),
        "state": "paused" if job.next_run_time is None else "running",
        "when": _iso(when),
        "periodically": str(periodically) if periodically else None,
        "periodically_seconds": int(periodically.total_seconds()) if periodically else None,
        "cron": job.meta.get("cron"),
        "calendar_interval": job.meta.get("calendar_interval"),
        "jitter": getattr(trigger, "jitter", None),
        "next_run_time": _iso(job.next_run_time),
        "timezone": job.timezone,
        "next_run_time_local": _iso(
            job.next_run_time and zones.local(job.next_run_time, job.timezone)
        ),
        "misfire_grace_time": job.misfire_grace_time,
        "default": job.default,
        **job.options.meta(),
        "created_by": job.meta.get("created_by"),
        "state_changed_by": job.meta.get("state_changed_by"),
        "state_changed_at": job.meta.get("state_changed_at"),
    }


class RecentViews:
    """The views of the jobs of recent pages, by the job object. The repository restores a page's
    unchanged jobs as the same (immutable) objects, so a page read again reuses their views; a changed job
    is a new object, and gets a new view. An entry holds its job, so no other object can take the job's
    ``id()`` while the entry lives. The views are shared: callers only read them."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._views: OrderedDict[int, tuple[Job | BrokenJob, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def of(self, job: Job | BrokenJob) -> dict[str, Any]:
        key = id(job)
        with self._lock:
            found = self._views.get(key)
            if found is not None and found[0] is job:
                self._views.move_to_end(key)
                return found[1]
        view = job_view(job)
        with self._lock:
            self._views[key] = (job, view)
            self._views.move_to_end(key)
            while len(self._views) > self.size:
                self._views.popitem(last=False)
        return view
