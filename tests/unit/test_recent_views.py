"""The views of recent pages' jobs (``RecentViews``): one view per job object while it is kept, as many kept
as asked, and a changed job (a new object) gets a view of its own."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from apscheduler.triggers.interval import IntervalTrigger

from f8a_jobs_worker.job import Job, decode, encode
from f8a_jobs_worker.scheduling.view import RecentViews, job_view

LATER = datetime(2999, 1, 1, tzinfo=UTC)


def test_recent_views_keep_as_many_as_asked_and_a_new_job_gets_a_new_view() -> None:

    def job(job_id: str) -> Any:
        stored = Job(job_id, "noop", {}, IntervalTrigger(days=1), {}, None, LATER)
        return decode(encode(stored))

    views = RecentViews(2)
    a, b, c = job("a"), job("b"), job("c")
    first = views.of(a)
    assert views.of(a) is first  # one view per job while it is kept
    views.of(b)
    views.of(c)  # a, the oldest, goes
    again = views.of(a)
    assert again is not first and again == first == job_view(a)
    assert views.of(c) is views.of(c) and len(views._views) == 2
    moved = a.moved(None)
    assert views.of(moved)["state"] == "paused" and views.of(a)["state"] == "running"
