"""The scheduling core on SQLite and the in-memory transport, time moved by the test: when a run fires,
what is recorded, misfires, a paused scheduler, pausing after failures."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from f8a_jobs_worker.client import Client
from tests.helpers import MovableClock, records, sink_of


def test_a_periodic_job_fires_when_its_time_comes_and_is_recorded(
    unit_worker, client: Client, clock: MovableClock, tmp_path: Path
) -> None:
    worker = unit_worker()
    sink = sink_of(worker)
    start = clock.now()
    out = tmp_path / "runs.jsonl"
    job = client.call(
        "job.create",
        handler="record",
        kwargs={"path": str(out)},
        job_id="hourly",
        periodically="1 hour",
    )["job"]
    # its first run (now) starts with the create: the reply shows the second
    assert datetime.fromisoformat(job["next_run_time"]) == start.replace(hour=13)
    sink.wait_for("job.executed", "hourly")
    assert datetime.fromisoformat(
        client.call("job.get", job_id="hourly")["job"]["next_run_time"]
    ) == (start.replace(hour=13))

    clock.move(hours=1, seconds=1)
    worker.scheduler.wake()
    sink.wait_for("job.executed", "hourly", count=2)

    runs = client.call("job.history", job_id="hourly")["runs"]
    scheduled = sorted(datetime.fromisoformat(run["scheduled_at"]) for run in runs)
    assert scheduled == [start, start.replace(hour=13)]
    assert {run["outcome"] for run in runs} == {"executed"}
    assert len(records(out)) == 2
    assert datetime.fromisoformat(
        client.call("job.get", job_id="hourly")["job"]["next_run_time"]
    ) == (start.replace(hour=14))


def test_a_run_later_than_its_grace_is_missed_not_run(
    unit_worker, client: Client, clock: MovableClock, tmp_path: Path
) -> None:
    worker = unit_worker()
    sink = sink_of(worker)
    out = tmp_path / "late.jsonl"
    client.call(
        "job.create",
        handler="record",
        kwargs={"path": str(out)},
        job_id="once",
        when=clock.move(minutes=0).replace(minute=10).isoformat(),
        misfire_grace_time=60,
    )
    clock.move(minutes=20)
    worker.scheduler.wake()
    (missed,) = sink.wait_for("job.missed", "once")
    assert "job.executed" not in sink.names("once")
    assert not out.exists()
    runs = client.call("job.history", job_id="once")["runs"]
    assert [run["outcome"] for run in runs] == ["missed"]
    assert missed.fields["scheduled_run_time"].startswith("2030-03-01T12:10:00")


def test_a_paused_scheduler_fires_nothing_until_resumed(
    unit_worker, client: Client, clock: MovableClock, tmp_path: Path
) -> None:
    worker = unit_worker()
    sink = sink_of(worker)
    out = tmp_path / "paused.jsonl"
    assert client.call("scheduler.pause") == {"state": "paused"}
    client.call(
        "job.create",
        handler="record",
        kwargs={"path": str(out)},
        job_id="waits",
        when=clock.now().replace(minute=5).isoformat(),
    )
    clock.move(minutes=10)
    passes = worker.scheduler.passes
    worker.scheduler.wake()
    assert client.call("scheduler.state")["state"] == "paused"
    assert worker.scheduler.passes == passes  # paused: the wake-up made no pass
    assert "job.executed" not in sink.names("waits")

    assert client.call("scheduler.resume") == {"state": "running"}
    sink.wait_for("job.executed", "waits")
    assert len(records(out)) == 1


def test_a_job_is_paused_after_its_failures_in_a_row(
    unit_worker, client: Client, clock: MovableClock
) -> None:
    worker = unit_worker()
    sink = sink_of(worker)
    client.call(
        "job.create",
        handler="fail",
        kwargs={"message": "no"},
        job_id="flaky",
        periodically="1 minute",
        pause_after_failures=2,
    )
    sink.wait_for("job.failed", "flaky")
    assert client.call("job.get", job_id="flaky")["job"]["state"] == "running"

    clock.move(minutes=1, seconds=1)
    worker.scheduler.wake()
    (paused,) = sink.wait_for("job.paused", "flaky")
    assert paused.fields["reason"] == "2 consecutive failed runs (pause_after_failures)"
    job = client.call("job.get", job_id="flaky")["job"]
    assert job["state"] == "paused" and job["next_run_time"] is None
    assert len(sink.wait_for("job.failed", "flaky", count=2)) == 2
