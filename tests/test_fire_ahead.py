"""Runs claimed a little ahead of their time start at their time, never before it, once each; the alarm
clock that starts them; a graceful stop runs what was claimed ahead instead of losing it."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from f8a_jobs_worker.clock import SYSTEM
from f8a_jobs_worker.scheduling.alarm import AlarmClock
from tests.helpers import eventually, records, sink_of


def test_the_alarm_clock_calls_back_at_each_moment_in_order_never_early() -> None:
    clock = AlarmClock(SYSTEM)
    called: list[tuple[int, datetime]] = []
    start = datetime.now(UTC)
    moments = [start + timedelta(milliseconds=ms) for ms in (80, 20, 50, 50, 10)]
    for n, moment in enumerate(moments):
        clock.at(moment, lambda n=n: called.append((n, datetime.now(UTC))))
    eventually(lambda: len(called) == 5, timeout=5)
    assert [n for n, _ in called] == [
        4,
        1,
        2,
        3,
        0,
    ]  # by moment; the same moment in the order given
    assert all(at >= moments[n] for n, at in called)
    clock.stop()


def test_a_moment_passed_is_called_at_once_in_the_callers_thread() -> None:
    clock = AlarmClock(SYSTEM)
    threads: list[str] = []
    clock.at(datetime.now(UTC) - timedelta(seconds=1), lambda: threads.append("now"))
    assert threads == ["now"]
    clock.stop()


def test_a_failing_callback_does_not_stop_the_clock() -> None:
    clock = AlarmClock(SYSTEM)
    called: list[str] = []
    soon = datetime.now(UTC) + timedelta(milliseconds=20)

    def fail() -> None:
        raise RuntimeError("a bug in a callback")

    clock.at(soon, fail)
    clock.at(soon + timedelta(milliseconds=10), lambda: called.append("after"))
    eventually(lambda: called == ["after"], timeout=5)
    clock.stop()


def test_stop_runs_what_waits_at_its_moment_then_ends_the_thread() -> None:
    clock = AlarmClock(SYSTEM, "alarm-of-the-stop-test")
    called: list[datetime] = []
    moment = datetime.now(UTC) + timedelta(milliseconds=300)
    clock.at(moment, lambda: called.append(datetime.now(UTC)))
    clock.stop()
    assert len(called) == 1 and called[0] >= moment
    assert not [t for t in threading.enumerate() if t.name == clock.name]
    clock.at(
        datetime.now(UTC) + timedelta(milliseconds=10), lambda: called.append(datetime.now(UTC))
    )
    eventually(lambda: len(called) == 2, timeout=5)  # a later alarm starts a thread again
    clock.stop()


def test_a_stream_of_runs_is_claimed_ahead_and_each_starts_at_its_time_once(
    make_worker, tmp_path: Path
) -> None:
    out = tmp_path / "runs.jsonl"
    worker = make_worker()
    alarm = worker.executor.alarm
    claimed_ahead: list[float] = []
    at = alarm.at

    def noting(moment: datetime, callback):  # type: ignore[no-untyped-def]
        claimed_ahead.append((moment - datetime.now(UTC)).total_seconds())
        at(moment, callback)

    alarm.at = noting
    first = datetime.now(UTC) + timedelta(seconds=1)
    due = [first + timedelta(milliseconds=20 * n) for n in range(40)]
    for n, moment in enumerate(due):
        worker.service.create_job(
            "record", {"path": str(out), "value": n}, job_id=f"s{n}", when=moment.isoformat()
        )
    sink_of(worker).wait_for("job.executed", count=40, timeout=30)
    runs = records(out)
    assert sorted(r["value"] for r in runs) == list(range(40))  # each once
    for run in runs:
        assert run["at"] >= datetime.fromisoformat(run["scheduled_at"]).timestamp()  # never early
    assert len(claimed_ahead) == 40
    assert any(seconds > 0 for seconds in claimed_ahead)  # claimed by a pass before they were due
    assert max(claimed_ahead) <= worker.scheduler.fire_ahead + 0.01


def test_a_run_claimed_ahead_still_runs_when_the_worker_stops(make_worker, tmp_path: Path) -> None:
    out = tmp_path / "runs.jsonl"
    worker = make_worker()
    worker.scheduler.firing.fire_ahead = 2.0  # a window wide enough to stop inside it
    due = datetime.now(UTC) + timedelta(seconds=1.5)
    worker.service.create_job("record", {"path": str(out)}, job_id="ahead", when=due.isoformat())
    eventually(lambda: worker.executor.alarm.waiting == 1, timeout=10)
    assert records(out) == []
    worker.stop()
    runs = records(out)
    assert [r["job_id"] for r in runs] == ["ahead"]
    assert runs[0]["at"] >= due.timestamp()
    assert [r["outcome"] for r in worker.service.job_history("ahead")["runs"]] == ["executed"]


def test_a_pause_is_answered_once_the_runs_claimed_before_it_are_due(
    make_worker, tmp_path: Path
) -> None:
    """No run due after ``job.pause`` was answered fires, even one a pass claimed before the pause."""
    out = tmp_path / "runs.jsonl"
    worker = make_worker()
    worker.scheduler.firing.fire_ahead = 1.0
    due = datetime.now(UTC) + timedelta(seconds=1.5)
    worker.service.create_job(
        "record", {"path": str(out)}, job_id="tick", when=due.isoformat(), periodically="1 second"
    )
    eventually(lambda: worker.executor.alarm.waiting == 1, timeout=10)  # claimed ahead
    worker.service.pause_job("tick")
    answered = datetime.now(UTC)
    assert answered >= due  # the reply waited for the run claimed before the pause to be due
    sink_of(worker).wait_for("job.executed", "tick")
    time.sleep(1.5)
    runs = records(out)
    assert runs and all(datetime.fromisoformat(r["scheduled_at"]) <= answered for r in runs)
