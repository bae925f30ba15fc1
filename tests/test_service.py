"""The service facade against a real PostgreSQL job store: every job command, its errors and its events."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from f8a_jobs_worker.errors import (
    InvalidSchedule,
    JobBusy,
    JobExists,
    JobNotFound,
    UnknownHandler,
    ValidationFailed,
)
from tests.helpers import delivered, eventually, records, sink_of

LATER = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)


def test_create_get_and_view(make_worker) -> None:
    worker = make_worker()
    created = worker.service.create_job(
        "noop",
        {"message": "hi"},
        job_id="nightly",
        periodically="1 day",
        when=LATER.isoformat(),
        misfire_grace_time="2h",
    )
    view = created["job"]
    assert view == worker.service.get_job("nightly")["job"]
    assert view == {
        "job_id": "nightly",
        "handler": "noop",
        "kwargs": {"message": "hi"},
        "state": "running",
        "when": LATER.isoformat(),
        "periodically": "1 day, 0:00:00",
        "periodically_seconds": 86400,
        "cron": None,
        "calendar_interval": None,
        "jitter": None,
        "next_run_time": LATER.isoformat(),
        "timezone": "UTC",
        "next_run_time_local": LATER.isoformat(),
        "misfire_grace_time": 7200,
        "default": False,
        "on_interrupt": "report",
        "pause_after_failures": None,
        "overlap": "skip",
        "overlap_limit": None,
        "created_by": None,  # a facade call, not a command: no principal
        "state_changed_by": None,
        "state_changed_at": None,
    }
    assert delivered(worker).names("nightly") == ["job.created"]


def test_generated_id_default_grace_and_cron(make_worker) -> None:
    worker = make_worker()
    view = worker.service.create_job("noop", cron="0 5 * * 1-5", jitter=30)["job"]
    assert len(view["job_id"]) == 36
    assert view["cron"] == "0 5 * * 1-5"
    assert view["jitter"] == 30
    assert view["misfire_grace_time"] == 3600
    assert datetime.fromisoformat(view["next_run_time"]).hour == 5


def test_null_grace_time_means_run_however_late(make_worker) -> None:
    worker = make_worker()
    view = worker.service.create_job("noop", periodically="1h", misfire_grace_time=None)["job"]
    assert view["misfire_grace_time"] is None


def test_paused_at_creation(make_worker) -> None:
    worker = make_worker()
    view = worker.service.create_job("noop", job_id="p", periodically="1h", state="paused")["job"]
    assert view["state"] == "paused"
    assert view["next_run_time"] is None


def test_job_exists_and_replace(make_worker) -> None:
    worker = make_worker()
    worker.service.create_job("noop", job_id="j", periodically="1h", when=LATER.isoformat())
    with pytest.raises(JobExists) as caught:
        worker.service.create_job("noop", job_id="j", periodically="2h")
    assert caught.value.code == "job_exists"
    replaced = worker.service.create_job(
        "noop",
        {"message": "new"},
        job_id="j",
        periodically="2h",
        when=LATER.isoformat(),
        replace=True,
    )["job"]
    assert replaced["periodically_seconds"] == 7200
    assert replaced["kwargs"] == {"message": "new"}
    assert delivered(worker).names("j") == ["job.created", "job.updated"]
    assert worker.service.list_jobs()["jobs_count"] == 1


@pytest.mark.parametrize(
    ("args", "error", "code"),
    [
        ({"handler": "nope"}, UnknownHandler, "unknown_handler"),
        (
            {"handler": "noop", "kwargs": {"message": 5, "extra": 1}},
            ValidationFailed,
            "validation_error",
        ),
        ({"handler": "noop", "state": "sleeping"}, ValidationFailed, "validation_error"),
        ({"handler": "noop", "job_id": "x" * 192}, ValidationFailed, "validation_error"),
        ({"handler": "noop", "periodically": "1 month"}, InvalidSchedule, "invalid_schedule"),
        ({"handler": "noop", "when": "yesterday-ish"}, InvalidSchedule, "invalid_schedule"),
        (
            {"handler": "noop", "cron": "* * *", "periodically": "1h"},
            InvalidSchedule,
            "invalid_schedule",
        ),
    ],
)
def test_create_errors_store_nothing(make_worker, args, error, code) -> None:
    worker = make_worker()
    with pytest.raises(error) as caught:
        worker.service.create_job(**args)
    assert caught.value.code == code
    assert worker.service.list_jobs()["jobs_count"] == 0
    assert sink_of(worker).events == []


def test_kwargs_violations_are_listed_with_json_paths(make_worker) -> None:
    worker = make_worker()
    with pytest.raises(ValidationFailed) as caught:
        worker.service.create_job("noop", {"message": 5, "extra": 1})
    paths = sorted(d["path"] for d in caught.value.details)
    assert paths == ["$.kwargs", "$.kwargs.message"]
    assert "Additional properties" in " ".join(d["message"] for d in caught.value.details)


def test_pause_resume_delete(make_worker) -> None:
    worker = make_worker()
    worker.service.create_job("noop", job_id="j", periodically="1h", when=LATER.isoformat())
    paused = worker.service.pause_job("j")["job"]
    assert (paused["state"], paused["next_run_time"]) == ("paused", None)
    resumed = worker.service.resume_job("j")["job"]
    assert resumed["state"] == "running"
    assert resumed["next_run_time"] == LATER.isoformat()
    assert worker.service.delete_job("j") == {"removed": ["j"]}
    assert delivered(worker).names("j") == [
        "job.created",
        "job.paused",
        "job.resumed",
        "job.deleted",
    ]
    for action in (
        worker.service.get_job,
        worker.service.pause_job,
        worker.service.resume_job,
        worker.service.delete_job,
        worker.service.run_job_now,
    ):
        with pytest.raises(JobNotFound):
            action("j")


def test_list_filters_and_pages(make_worker) -> None:
    worker = make_worker()
    for n in range(5):
        worker.service.create_job("noop", job_id=f"user-{n}", periodically="1h")
    listed = worker.service.list_jobs(limit=2, offset=1)
    assert listed["jobs_count"] == 5
    assert [j["job_id"] for j in listed["jobs"]] == ["user-1", "user-2"]
    assert worker.service.list_jobs("default")["jobs_count"] == 0
    assert worker.service.list_jobs("user")["jobs_count"] == 5
    with pytest.raises(ValidationFailed):
        worker.service.list_jobs("weird")


def test_run_now_runs_a_paused_job_and_keeps_its_schedule(make_worker, tmp_path: Path) -> None:
    worker = make_worker()
    out = tmp_path / "runs.jsonl"
    before = worker.service.create_job(
        "record",
        {"path": str(out)},
        job_id="r",
        periodically="1 day",
        when=LATER.isoformat(),
        state="paused",
    )["job"]
    worker.service.run_job_now("r")
    eventually(lambda: records(out))
    sink_of(worker).wait_for("job.executed", "r")
    after = worker.service.get_job("r")["job"]
    assert after == before
    worker.service.resume_job("r")
    worker.service.run_job_now("r")
    eventually(lambda: len(records(out)) == 2)
    assert worker.service.get_job("r")["job"]["next_run_time"] == LATER.isoformat()


def test_run_now_while_running_is_job_busy(make_worker, tmp_path: Path) -> None:
    worker = make_worker()
    worker.service.create_job(
        "sleep", {"seconds": 1.5}, job_id="s", periodically="1 day", when=LATER.isoformat()
    )
    worker.service.run_job_now("s")
    with pytest.raises(JobBusy) as caught:
        worker.service.run_job_now("s")
    assert caught.value.code == "job_busy"
    sink_of(worker).wait_for("job.executed", "s")
    worker.service.run_job_now("s")  # free again once the first run finished


def test_one_shot_job_runs_once_and_is_gone(make_worker, tmp_path: Path) -> None:
    worker = make_worker()
    out = tmp_path / "runs.jsonl"
    worker.service.create_job("record", {"path": str(out), "value": 7}, job_id="once")
    sink_of(worker).wait_for("job.executed", "once")
    assert [r["value"] for r in records(out)] == [7]
    with pytest.raises(JobNotFound):
        worker.service.get_job("once")


def test_scheduler_pause_survives_restart(make_worker, tmp_path: Path) -> None:
    worker = make_worker()
    assert worker.service.scheduler_state()["state"] == "running"
    assert worker.service.pause_scheduler() == {"state": "paused"}
    out = tmp_path / "runs.jsonl"
    worker.service.create_job("record", {"path": str(out)}, job_id="held")
    worker.stop()
    again = make_worker()
    assert again.service.scheduler_state()["state"] == "paused"
    assert again.service.get_job("held")["job"]["state"] == "running"
    assert records(out) == []
    again.service.resume_scheduler()
    sink_of(again).wait_for("job.executed", "held")
    assert sink_of(worker).names() == ["scheduler.paused", "job.created"]
    assert sink_of(again).names()[0] == "scheduler.resumed"


def test_health_reflects_the_store(make_worker) -> None:
    worker = make_worker()
    assert worker.service.health() == {"live": True, "ready": True, "store": "ok"}
    worker.stop()
    assert worker.service.health()["live"] is False


def test_the_scheduler_is_woken_only_for_a_job_due_before_its_planned_pass(make_worker) -> None:
    """With the poll interval at a minute, a paused job and a job due next week start no pass; a job due in
    a second is fired on time (its command woke the scheduler after the commit)."""
    worker = make_worker(poll_interval=60.0)
    scheduler = worker.scheduler
    if worker.listener is not None:  # connecting, it wakes the scheduler: that pass must be over
        assert worker.listener.listening.wait(10)
    eventually(lambda: scheduler.planned is not None)  # the last pass so far planned the next
    before = scheduler.passes
    worker.service.create_job("noop", job_id="paused", periodically="1 hour", state="paused")
    worker.service.create_job("noop", job_id="far", when=(LATER + timedelta(days=5)).isoformat())
    worker.service.pause_job("far")
    time.sleep(0.5)
    assert scheduler.passes == before
    due = datetime.now(UTC) + timedelta(seconds=1)
    worker.service.create_job("noop", job_id="soon", when=due.isoformat())
    executed = eventually(
        lambda: [e for e in sink_of(worker).events if e.name == "job.executed"], timeout=10
    )
    assert [e.job_id for e in executed] == ["soon"]
    history = worker.service.job_history("soon")["runs"]
    started = datetime.fromisoformat(history[0]["started_at"])
    assert started - due < timedelta(seconds=5)  # far sooner than the minute's poll
