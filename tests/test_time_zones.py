"""Jobs in named time zones on PostgreSQL, the clock moved across daylight-saving changes: each fixed-time job
runs once per local day at the time docs/messages.md ("Time zones") gives for the change days, an hourly job
runs every real hour, on one replica and on three sharing the store."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from f8a_jobs_worker import zones
from f8a_jobs_worker.errors import ValidationFailed
from f8a_jobs_worker.persistence.tables import scheduler_state
from f8a_jobs_worker.worker import Worker
from tests.helpers import MovableClock, eventually, records

YEAR_2026 = "2026-01-01T00:00"

#: (zone, window start in UTC): two days around each 2026 change, starting at noon UTC the day before
WINDOWS = {
    "Prague spring": ("Europe/Prague", "2026-03-28T12:00"),
    "Prague autumn": ("Europe/Prague", "2026-10-24T12:00"),
    "New York spring": ("America/New_York", "2026-03-07T12:00"),
    "New York autumn": ("America/New_York", "2026-10-31T12:00"),
}
#: the runs docs/messages.md promises, local time with offset, per window and line
EXPECTED = {
    "Prague spring": {
        "0 2 * * *": ["2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00"],
        "30 1 * * *": ["2026-03-29T01:30:00+01:00", "2026-03-30T01:30:00+02:00"],
    },
    "Prague autumn": {
        "0 2 * * *": ["2026-10-25T02:00:00+02:00", "2026-10-26T02:00:00+01:00"],
        "30 1 * * *": ["2026-10-25T01:30:00+02:00", "2026-10-26T01:30:00+01:00"],
    },
    "New York spring": {
        "0 2 * * *": ["2026-03-08T03:00:00-04:00", "2026-03-09T02:00:00-04:00"],
        "30 1 * * *": ["2026-03-08T01:30:00-05:00", "2026-03-09T01:30:00-04:00"],
    },
    "New York autumn": {
        "0 2 * * *": ["2026-11-01T02:00:00-05:00", "2026-11-02T02:00:00-05:00"],
        "30 1 * * *": ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"],
    },
}
HOURS = timedelta(hours=44)  # the window: from noon UTC the day before to 08:00 UTC two days later


def _job_id(line: str) -> str:
    return "at-" + line.split()[1] + "-" + line.split()[0]


def fire_through(
    workers: list[Worker], clock: MovableClock, paths: dict[str, Path], end: datetime
) -> None:
    """Move the clock to each next run time before ``end`` in turn; wait until that run is recorded. Runs
    the clock has already passed are settled (run or recorded missed) before it moves. A run's outcome is
    written a moment after its handler returns: the clock moves on only once it is, or the next run would
    find its job still running (and be recorded missed, as a real overlap is)."""
    service = workers[0].service

    def next_runs() -> dict[str, datetime]:
        views = {job_id: service.get_job(job_id)["job"] for job_id in paths}
        return {j: datetime.fromisoformat(v["next_run_time"]) for j, v in views.items()}

    def recorded(job_id: str, due: datetime) -> bool:
        runs = service.job_history(job_id, limit=5)["runs"]
        return any(datetime.fromisoformat(run["scheduled_at"]) == due for run in runs)

    now = clock.now()
    for worker in workers:
        worker.scheduler.wake()
    eventually(lambda: min(next_runs().values()) >= now)  # a jump's missed runs are settled first
    while True:
        upcoming = next_runs()
        due = min(upcoming.values())
        if due >= end:
            return
        firing = [job_id for job_id, moment in upcoming.items() if moment == due]
        before = {job_id: len(records(paths[job_id])) for job_id in firing}
        clock.set(due)
        for worker in workers:
            worker.scheduler.wake()
        eventually(lambda: all(len(records(paths[j])) > before[j] for j in firing))  # noqa: B023
        eventually(lambda: all(next_runs()[j] > due for j in firing))  # noqa: B023
        eventually(lambda: all(recorded(j, due) for j in firing))  # noqa: B023


@pytest.mark.parametrize("replicas", [1, 3])
@pytest.mark.parametrize("window", list(WINDOWS))
def test_fixed_time_jobs_run_once_per_local_day_across_a_change(
    make_worker: Callable[..., Worker], tmp_path: Path, window: str, replicas: int
) -> None:
    name, start_text = WINDOWS[window]
    start = datetime.fromisoformat(start_text).replace(tzinfo=UTC)
    clock = MovableClock(start)
    workers = [make_worker(clock=clock) for _ in range(replicas)]
    paths: dict[str, Path] = {}
    for line, expected in EXPECTED[window].items():
        shown = workers[0].service.preview_schedule(cron=line, timezone=name, count=len(expected))
        assert [run["local"] for run in shown["runs"]] == expected
        job_id = _job_id(line)
        paths[job_id] = tmp_path / f"{job_id}.jsonl"
        view = workers[0].service.create_job(
            "record", {"path": str(paths[job_id])}, job_id=job_id, cron=line, timezone=name
        )["job"]
        assert view["timezone"] == name
        local = datetime.fromisoformat(view["next_run_time_local"])
        assert local == datetime.fromisoformat(view["next_run_time"])
        assert local.isoformat() == EXPECTED[window][line][0]
        with_runs = workers[0].service.get_job(job_id, next_runs=len(expected))
        assert with_runs["next_runs"] == shown["runs"]

    fire_through(workers, clock, paths, start + HOURS)

    for line, expected in EXPECTED[window].items():
        runs = records(paths[_job_id(line)])
        ran = [zones.local(datetime.fromisoformat(r["scheduled_at"]), name) for r in runs]
        assert [moment.isoformat() for moment in ran] == expected, line


@pytest.mark.parametrize("replicas", [1, 3])
def test_an_hourly_job_runs_the_repeated_hour_twice_and_the_skipped_one_not_at_all(
    make_worker: Callable[..., Worker], tmp_path: Path, replicas: int
) -> None:
    """New York, 2026: clocks go back on 1 November at 02:00 (01:xx twice) and forward on 8 March at 02:00."""
    for start, hours in (("2026-11-01T03:00", 6), ("2026-03-08T04:00", 5)):
        begin = datetime.fromisoformat(start).replace(tzinfo=UTC)
        clock = MovableClock(begin)
        workers = [make_worker(clock=clock) for _ in range(replicas)]
        path = tmp_path / f"hourly-{start}.jsonl"
        workers[0].service.create_job(
            "record",
            {"path": str(path)},
            job_id=f"hourly-{start}",
            cron="30 * * * *",
            timezone="America/New_York",
        )
        fire_through(workers, clock, {f"hourly-{start}": path}, begin + timedelta(hours=hours))
        ran = [datetime.fromisoformat(r["scheduled_at"]) for r in records(path)]
        shown = [zones.local(m, "America/New_York").strftime("%H:%M%z") for m in ran]
        if start.startswith("2026-11"):
            assert shown == [
                "23:30-0400",
                "00:30-0400",
                "01:30-0400",
                "01:30-0500",
                "02:30-0500",
                "03:30-0500",
            ]
        else:
            assert shown == ["23:30-0500", "00:30-0500", "01:30-0500", "03:30-0400", "04:30-0400"]
        assert [b - a for a, b in itertools.pairwise(ran)] == [timedelta(hours=1)] * (hours - 1)
        for worker in workers:
            worker.stop()


def test_when_without_an_offset_is_read_in_the_jobs_zone(
    make_worker: Callable[..., Worker],
) -> None:
    worker = make_worker()
    view = worker.service.create_job(
        "noop", job_id="local", when="2030-07-01T09:00", timezone="Europe/Prague", state="paused"
    )["job"]
    assert view["when"] == "2030-07-01T07:00:00+00:00"
    # a time the spring change skips means the first instant after the gap
    view = worker.service.create_job(
        "noop", job_id="gap", when="2030-03-31T02:30", timezone="Europe/Prague", state="paused"
    )["job"]
    assert view["when"] == "2030-03-31T01:00:00+00:00"
    view = worker.service.create_job("noop", job_id="utc", when="2030-07-01T09:00", state="paused")[
        "job"
    ]
    assert (view["when"], view["timezone"]) == ("2030-07-01T09:00:00+00:00", "UTC")


def test_an_unknown_zone_is_a_validation_error_naming_it(
    make_worker: Callable[..., Worker],
) -> None:
    worker = make_worker()
    with pytest.raises(ValidationFailed) as caught:
        worker.service.create_job("noop", job_id="x", cron="0 2 * * *", timezone="Europe/Prag")
    assert caught.value.code == "validation_error"
    assert "'Europe/Prag'" in str(caught.value) and "Europe/Prague" in str(caught.value)
    assert caught.value.details[0]["path"] == "$.timezone"


@pytest.mark.parametrize("name", ["Europe/Prague", "America/New_York"])
@pytest.mark.parametrize("line", ["0 2 * * *", "30 1 * * *"])
def test_a_years_preview_over_rabbitmq_runs_once_per_local_day(
    messaging_worker: Callable[..., Worker], run_cli: Callable[..., Any], name: str, line: str
) -> None:
    messaging_worker()
    preview = ["jobs", "preview", "--cron", line, "--timezone", name, "--start", YEAR_2026]
    shown = run_cli(*preview, "--count", "365")
    assert shown.exit_code == 0, shown.output
    minute, hour = (int(field) for field in line.split()[:2])
    assert shown.output.splitlines()[0] == f"at {hour:02d}:{minute:02d} every day, {name}"
    result = json.loads(run_cli(*preview, "--count", "365", "--json").output)
    days = [datetime.fromisoformat(run["local"]).date() for run in result["runs"]]
    assert days == sorted(set(days)) and len(days) == 365  # once per local day, every day of 2026
    assert [change["kind"] for change in result["changes"]] == ["forward", "back"]
    spring, autumn = result["changes"]
    # both zones skip 02:xx in spring; in autumn Prague repeats 02:xx, New York 01:xx
    skipped, repeated = hour == 2, hour == (2 if name == "Europe/Prague" else 1)
    assert spring["wall_times"] == ([f"{hour:02d}:{minute:02d}"] if skipped else [])
    assert autumn["wall_times"] == ([f"{hour:02d}:{minute:02d}"] if repeated else [])
    if skipped:
        assert "runs once, at 03:00" in spring["effect"]
    if repeated:
        assert "runs once, at the first" in autumn["effect"] and len(autumn["runs"]) == 1


@pytest.mark.parametrize(
    ("stored", "recomputed"), [("2000a", True), ("9999z", False), (None, False)]
)
def test_next_run_times_follow_newer_zone_rules_at_start(
    make_worker: Callable[..., Worker], stored: str | None, recomputed: bool
) -> None:
    """A store whose next run times older rules computed (here: a wrong instant standing in for them) is
    brought up to this replica's rules at start; one newer rules computed is left alone; one that recorded
    none (no replica with zones ever started on it, so it holds no job in a zone) only records them."""
    clock = MovableClock(datetime(2030, 3, 20, 12, tzinfo=UTC))
    worker = make_worker(clock=clock)
    created = worker.service.create_job(
        "noop", job_id="daily", cron="0 2 * * *", timezone="Europe/Prague"
    )
    right = created["job"]["next_run_time"]
    wrong = datetime(2030, 3, 21, 3, tzinfo=UTC)
    service = worker.service
    with service.unit_of_work() as uow:
        (job,) = [j for j in service.writes.jobs.scheduled(uow) if j.job_id == "daily"]
        service.writes.jobs.save(uow, [job.moved(wrong)])
        if stored is None:
            uow.connection.execute(
                sa.delete(scheduler_state).where(scheduler_state.c.key == "tz_rules")
            )
        else:
            service.state.set_value(uow, "tz_rules", stored)
    worker.stop()

    again = make_worker(clock=clock)
    shown = again.service.get_job("daily")["job"]["next_run_time"]
    assert shown == (right if recomputed else wrong.isoformat())
    state = again.service.scheduler_state()
    assert state["tz_rules"] == {
        "store": zones.rules_version() if recomputed or stored is None else stored,
        "replica": zones.rules_version(),
    }
    assert [replica["tz_rules"] for replica in state["replicas"]] == [zones.rules_version()]


@pytest.mark.parametrize("replicas", [1, 3])
def test_a_calendar_interval_keeps_its_local_time_across_both_changes(
    make_worker: Callable[..., Worker], tmp_path: Path, replicas: int
) -> None:
    """Every day at 02:30 in Europe/Prague from 28 March 2026: 03:00 on the spring day (02:30 is skipped),
    02:30 once on the autumn day (it happens twice), 02:30 every other day; 23 and 25 hours apart there."""
    start = datetime(2026, 3, 27, 12, tzinfo=UTC)
    clock = MovableClock(start)
    workers = [make_worker(clock=clock) for _ in range(replicas)]
    path = tmp_path / "daily.jsonl"
    view = workers[0].service.create_job(
        "record",
        {"path": str(path)},
        job_id="daily",
        calendar_interval="1 day",
        when="2026-03-28T02:30",
        timezone="Europe/Prague",
    )["job"]
    assert view["calendar_interval"] == "1 day"
    fire_through(workers, clock, {"daily": path}, start + timedelta(days=3))
    clock.set(datetime(2026, 10, 24, 12, tzinfo=UTC))
    fire_through(workers, clock, {"daily": path}, datetime(2026, 10, 27, 12, tzinfo=UTC))
    runs = [datetime.fromisoformat(r["scheduled_at"]) for r in records(path)]
    shown = [zones.local(moment, "Europe/Prague").isoformat() for moment in runs]
    assert shown[:3] == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
    ]
    # autumn (the summer's runs, over an hour late when the clock jumped, were recorded missed)
    assert shown[-3:] == [
        "2026-10-25T02:30:00+02:00",
        "2026-10-26T02:30:00+01:00",
        "2026-10-27T02:30:00+01:00",
    ]
    assert runs[2] - runs[0] == timedelta(hours=47)  # two local days, one of them 23 hours long
    assert runs[-2] - runs[-3] == timedelta(hours=25)


def test_backfill_bounds_are_read_in_the_jobs_zone_and_follow_the_rules(
    make_worker: Callable[..., Worker],
) -> None:
    """Over New York's fall-back day an hourly line's backfill has the repeated hour twice, a fixed-time
    one its time once."""
    clock = MovableClock(datetime(2026, 11, 5, tzinfo=UTC))
    worker = make_worker(clock=clock)
    service = worker.service
    for job_id, line in (("hourly", "30 * * * *"), ("fixed", "30 1 * * *")):
        service.create_job(
            "noop", job_id=job_id, cron=line, timezone="America/New_York", state="paused"
        )
    hourly = service.backfill_job("hourly", start="2026-11-01T00:00", end="2026-11-01T04:00")
    assert hourly["runs"] == 5  # 00:30, 01:30 EDT, 01:30 EST, 02:30, 03:30
    assert (hourly["first"], hourly["last"]) == (
        "2026-11-01T04:30:00+00:00",
        "2026-11-01T08:30:00+00:00",
    )
    fixed = service.backfill_job("fixed", start="2026-11-01T00:00", end="2026-11-02T00:00")
    assert (fixed["runs"], fixed["first"]) == (1, "2026-11-01T05:30:00+00:00")


def test_a_calendar_interval_follows_newer_zone_rules_too(
    make_worker: Callable[..., Worker],
) -> None:
    clock = MovableClock(datetime(2030, 3, 20, 12, tzinfo=UTC))
    worker = make_worker(clock=clock)
    right = worker.service.create_job(
        "noop",
        job_id="cal",
        calendar_interval="1 week",
        when="2030-03-21T06:00",
        timezone="America/New_York",
    )["job"]["next_run_time"]
    service = worker.service
    with service.unit_of_work() as uow:
        (job,) = [j for j in service.writes.jobs.scheduled(uow) if j.job_id == "cal"]
        service.writes.jobs.save(uow, [job.moved(datetime(2030, 3, 21, 11, tzinfo=UTC))])
        service.state.set_value(uow, "tz_rules", "2000a")
    worker.stop()
    assert make_worker(clock=clock).service.get_job("cal")["job"]["next_run_time"] == right
