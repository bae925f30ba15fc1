"""Recomputing stored next run times for newer zone rules reads the store a page at a time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from f8a_jobs_worker.scheduling import zone_rules
from f8a_jobs_worker.worker import Worker


def test_every_page_of_zoned_jobs_is_recomputed(
    unit_worker: Callable[..., Worker], monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = unit_worker()
    service = worker.service
    for n in range(5):
        service.create_job("noop", job_id=f"zoned-{n}", cron="0 2 * * *", timezone="Europe/Prague")
        service.create_job("noop", job_id=f"plain-{n}", cron="0 2 * * *")
    right = service.get_job("zoned-0")["job"]["next_run_time"]
    wrong = datetime(2031, 1, 1, 3, tzinfo=UTC)
    with service.unit_of_work() as uow:
        jobs = service.writes.jobs
        zoned = [j for j in jobs.scheduled(uow) if j.job_id.startswith("zoned-")]
        jobs.save(uow, [job.moved(wrong) for job in zoned])
        service.state.set_value(uow, zone_rules.KEY, "2000a")
    monkeypatch.setattr(zone_rules, "PAGE", 2)
    moved = zone_rules.follow_rules(worker.transactions, worker.jobs, worker.state)
    assert sorted(moved) == [f"zoned-{n}" for n in range(5)]
    assert {service.get_job(f"zoned-{n}")["job"]["next_run_time"] for n in range(5)} == {right}
