"""Runs that fall due while the worker is down, and runs that fall due while it shuts down."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from f8a_jobs_worker.errors import JobNotFound
from tests.helpers import MovableClock, records, sink_of


def test_run_inside_grace_time_runs_at_start(make_worker, tmp_path: Path) -> None:
    """The workers' clock is the test's: however slow the machine, the run falls due while none runs."""
    out = tmp_path / "runs.jsonl"
    clock = MovableClock(datetime.now(UTC))
    due = clock.now() + timedelta(seconds=1.5)
    worker = make_worker(clock=clock)
    worker.service.create_job(
        "record", {"path": str(out)}, job_id="late", when=due.isoformat(), misfire_grace_time=60
    )
    worker.stop()
    clock.set(due + timedelta(seconds=1.5))
    assert records(out) == []  # nothing ran while the worker was down
    again = make_worker(clock=clock)
    executed = sink_of(again).wait_for("job.executed", "late")[0]
    assert executed.fields["scheduled_run_time"] == due.isoformat()
    assert [r["scheduled_at"] for r in records(out)] == [due.isoformat()]


def test_run_outside_grace_time_is_recorded_as_missed(make_worker, tmp_path: Path) -> None:
    out = tmp_path / "runs.jsonl"
    clock = MovableClock(datetime.now(UTC))
    due = clock.now() + timedelta(seconds=1.5)
    worker = make_worker(clock=clock)
    worker.service.create_job(
        "record", {"path": str(out)}, job_id="gone", when=due.isoformat(), misfire_grace_time=1
    )
    worker.service.create_job(
        "record",
        {"path": str(out)},
        job_id="hourly",
        when=due.isoformat(),
        periodically="1 hour",
        misfire_grace_time=1,
    )
    worker.stop()
    clock.set(due + timedelta(seconds=3))
    again = make_worker(clock=clock)
    missed = sink_of(again).wait_for("job.missed", "gone")[0]
    assert missed.fields["scheduled_run_time"] == due.isoformat()
    sink_of(again).wait_for("job.missed", "hourly")
    assert records(out) == []
    assert [r["outcome"] for r in again.service.job_history("gone")["runs"]] == ["missed"]
    with pytest.raises(JobNotFound):
        again.service.get_job("gone")
    # the periodic job keeps its rhythm: next run one hour after the missed one
    hourly = again.service.get_job("hourly")["job"]
    assert hourly["next_run_time"] == (due + timedelta(hours=1)).isoformat()


def _due_run_during_shutdown(make_worker, out: Path):
    """A job falls due in the store of a running, idle scheduler, which is then shut down.

    Another worker adds the job with its scheduler paused (and not following the shared state, which would
    resume it), and the idle one does not listen to the other replicas' notifications, so it is not woken
    before it is stopped. (APScheduler 3.11's own main loop made one more pass after its shutdown there,
    which moved the job's next run time on without running it.)
    """
    idle = make_worker()
    assert idle.listener is not None
    idle.listener.stop()
    writer = make_worker()
    writer.membership.following = False
    writer.scheduler.pause()
    created = writer.service.create_job(
        "record", {"path": str(out)}, job_id="due-at-shutdown", periodically="1 hour"
    )["job"]
    writer.stop()
    idle.stop()
    return created


def test_no_run_is_lost_on_shutdown(make_worker, tmp_path: Path) -> None:
    out = tmp_path / "runs.jsonl"
    created = _due_run_during_shutdown(make_worker, out)
    after = make_worker(start=False)
    after.service.pause_scheduler()  # it starts paused: nothing fires before the look below
    after.start()
    kept = after.service.get_job("due-at-shutdown")["job"]
    assert kept["next_run_time"] == created["next_run_time"]
    assert records(out) == []
    after.service.resume_scheduler()
    sink_of(after).wait_for("job.executed", "due-at-shutdown")
    assert len(records(out)) == 1


def test_stop_waits_for_running_jobs(make_worker, tmp_path: Path) -> None:
    out = tmp_path / "slept.jsonl"
    worker = make_worker()
    worker.service.create_job("sleep", {"seconds": 1.0, "path": str(out)}, job_id="nap")
    time.sleep(0.3)
    worker.stop()
    assert len(records(out)) == 1
    assert [r["outcome"] for r in worker.service.job_history("nap")["runs"]] == ["executed"]
