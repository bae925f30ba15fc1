"""Stored jobs whose state cannot be restored (a deploy renamed what they name): kept, shown as broken,
reported once, removable, and never in the way of healthy jobs or a reason for the scheduler to spin."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from f8a_jobs_worker.errors import JobBroken
from tests.helpers import eventually, sink_of

RENAMED = (b"apscheduler.triggers.interval", b"apscheduler.triggers.intervaX")


def break_jobs(database_url: str, template: str, count: int, due: datetime) -> list[str]:
    """``count`` rows that name a trigger module which no longer exists, due at ``due``."""
    engine = sa.create_engine(database_url)
    with engine.begin() as connection:
        state = connection.execute(
            sa.text("SELECT job_state FROM f8a_jobs WHERE id = :id"), {"id": template}
        ).scalar_one()
        assert RENAMED[0] in state
        ids = [f"broken-{n:03d}" for n in range(count)]
        connection.execute(
            sa.text(
                "INSERT INTO f8a_jobs (id, next_run_time, job_state, handler, is_default) "
                "VALUES (:id, :at, :state, 'noop', false)"
            ),
            [{"id": i, "at": due.timestamp(), "state": state.replace(*RENAMED)} for i in ids],
        )
    engine.dispose()
    return ids


def repair(database_url: str, job_id: str) -> None:
    """What a fix deploy amounts to: the stored state names something that exists again."""
    engine = sa.create_engine(database_url)
    with engine.begin() as connection:
        state = connection.execute(
            sa.text("SELECT job_state FROM f8a_jobs WHERE id = :id"), {"id": job_id}
        ).scalar_one()
        connection.execute(
            sa.text("UPDATE f8a_jobs SET job_state = :state WHERE id = :id"),
            {"id": job_id, "state": state.replace(RENAMED[1], RENAMED[0])},
        )
    engine.dispose()


def test_broken_rows_neither_spin_the_scheduler_nor_hide_healthy_jobs(
    make_worker, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    worker = make_worker()
    service = worker.service
    service.pause_scheduler()
    service.create_job("noop", job_id="template", periodically="1 day", when="2099-01-01")
    broken = break_jobs(database_url, "template", 100, datetime.now(UTC) - timedelta(seconds=1))
    service.create_job("noop", job_id="tick", periodically="1")
    past = (datetime.now(UTC) - timedelta(seconds=2)).isoformat()
    for n in range(20):
        service.create_job("noop", job_id=f"due-{n:02d}", when=past)
    service.resume_scheduler()

    events = sink_of(worker)
    for n in range(20):
        events.wait_for("job.executed", f"due-{n:02d}")
    events.wait_for("job.executed", "tick", count=3)
    reported = events.wait_for("job.broken", count=100)
    assert sorted(e.job_id for e in reported) == broken  # each once
    assert "ModuleNotFoundError" in reported[0].fields["error"]

    passes = worker.scheduler.passes
    time.sleep(1.0)
    assert worker.scheduler.passes - passes < 10  # idle between the one-second ticks
    assert [e.job_id for e in events.events if e.name == "job.broken"] == [
        e.job_id for e in reported
    ]
    assert caplog.text.count("cannot be restored and will not run") == 100
    assert not [r for r in service.job_history("tick")["runs"] if r["outcome"] == "missed"]

    listed = service.list_jobs(limit=1000)["jobs"]
    states = {job["job_id"]: job["state"] for job in listed}
    assert [states[i] for i in broken] == ["broken"] * 100
    assert states["tick"] == "running"
    view = service.get_job("broken-000")["job"]
    assert (view["state"], view["handler"], view["next_run_time"]) == ("broken", "noop", None)
    assert "ModuleNotFoundError" in view["error"]
    with pytest.raises(JobBroken):
        service.pause_job("broken-000")
    with pytest.raises(JobBroken):
        service.run_job_now("broken-000")
    assert service.delete_job("broken-000") == {"removed": ["broken-000"]}
    replaced = service.create_job(
        "noop", job_id="broken-001", periodically="1 day", when="2099-01-01", replace=True
    )
    assert replaced["job"]["state"] == "running"
    events.wait_for("job.updated", "broken-001")


def test_a_repaired_job_is_scheduled_again_at_the_next_start(
    make_worker, database_url: str
) -> None:
    worker = make_worker()
    worker.service.create_job("noop", job_id="template", periodically="1 day", when="2099-01-01")
    ids = break_jobs(database_url, "template", 2, datetime.now(UTC) - timedelta(seconds=1))
    worker.scheduler.wake()  # (rows written behind its back)
    sink_of(worker).wait_for("job.broken", count=2)
    worker.stop()

    repair(database_url, ids[0])
    again = make_worker()
    events = sink_of(again)
    repaired = again.service.get_job(ids[0])["job"]
    # scheduled at the next run time its own state holds (the template's, copied with it)
    assert (repaired["state"], repaired["next_run_time"]) == (
        "running",
        "2099-01-01T00:00:00+00:00",
    )
    assert again.service.get_job(ids[1])["job"]["state"] == "broken"
    eventually(lambda: again.scheduler.passes > 0)
    time.sleep(0.5)
    assert "job.broken" not in events.names()  # already reported by the first worker
