"""``calendar_interval`` against its definition: run *k* is the first run's local date moved by *k* intervals
(the month's last day where the month is short), at the same local time, a skipped time run when the gap ends
and a repeated one at its first occurrence."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from f8a_jobs_worker import zones
from f8a_jobs_worker.errors import InvalidSchedule
from f8a_jobs_worker.scheduling.schedule import build_schedule
from tests.unit.test_zoned_cron import ZONES, starts_before_a_change

UNITS = {"day": (0, 1), "week": (0, 7), "month": (1, 0), "year": (12, 0)}


def expected_wall(anchor: datetime, unit: str, count: int, index: int) -> datetime:
    months, days = UNITS[unit]
    months, days = months * count * index, days * count * index
    year, month = divmod(anchor.month - 1 + months, 12)
    year += anchor.year
    day = min(anchor.day, calendar.monthrange(year, month + 1)[1])
    return anchor.replace(year=year, month=month + 1, day=day) + timedelta(days=days)


def check_run(run: datetime, wall: datetime, name: str) -> None:
    rules = zones.zone(name)
    local = run.astimezone(rules)
    if local.replace(tzinfo=None) == wall:
        assert local.fold == 0, f"{run} is the second {wall}: a repeated time runs at its first"
        return
    # the wall time was skipped: the run is the first instant after the gap
    before = (run - timedelta(seconds=1)).astimezone(rules).replace(tzinfo=None)
    assert before < wall < local.replace(tzinfo=None), f"{run} for {wall} in {name}"


@settings(max_examples=120, deadline=None)
@given(data=st.data())
def test_runs_keep_the_local_date_and_time(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(ZONES), label="zone")
    start = data.draw(starts_before_a_change(name), label="start")
    unit = data.draw(st.sampled_from(list(UNITS)), label="unit")
    count = data.draw(st.integers(1, 3), label="count")
    hour, minute = data.draw(st.integers(0, 23)), data.draw(st.sampled_from([0, 15, 30, 59]))
    wall = zones.local_naive(start, name).replace(hour=hour, minute=minute, second=0, microsecond=0)
    schedule = build_schedule(
        calendar_interval=f"{count} {unit}", when=wall.isoformat(), timezone=name, now=start
    )
    trigger = schedule.trigger
    runs = [trigger.get_next_fire_time(None, schedule.when)]
    for _ in range(40):
        runs.append(trigger.get_next_fire_time(runs[-1], runs[-1]))
    assert runs == sorted(set(runs)), "strictly increasing"
    for index, run in enumerate(runs):
        check_run(run, expected_wall(wall, unit, count, index), name)
    probe = runs[0] + (runs[-1] - runs[0]) * data.draw(st.floats(0, 1), label="probe")
    assert trigger.get_next_fire_time(None, probe) == min(r for r in runs if r >= probe)


def test_a_daily_run_at_a_skipped_time_runs_when_the_gap_ends() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    schedule = build_schedule(
        calendar_interval="1 day", when="2026-03-28T02:30", timezone="Europe/Prague", now=now
    )
    first = schedule.trigger.get_next_fire_time(None, schedule.when)
    second = schedule.trigger.get_next_fire_time(first, first)
    third = schedule.trigger.get_next_fire_time(second, second)
    shown = [zones.local(m, "Europe/Prague").isoformat() for m in (first, second, third)]
    assert shown == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
    ]


@pytest.mark.parametrize(
    "value", ["1 fortnight", "0 days", "-1 day", "1.5 days", 3, "999999 years"]
)
def test_bad_intervals_are_refused_naming_the_field(value: object) -> None:
    with pytest.raises(InvalidSchedule) as caught:
        build_schedule(calendar_interval=value, now=datetime(2026, 3, 1, tzinfo=UTC))
    assert caught.value.field == "calendar_interval"


def test_only_one_kind_of_schedule() -> None:
    with pytest.raises(InvalidSchedule) as caught:
        build_schedule(
            calendar_interval="1 day", cron="0 6 * * *", now=datetime(2026, 3, 1, tzinfo=UTC)
        )
    assert "only one of" in str(caught.value)
