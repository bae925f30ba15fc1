"""Cron lines in named time zones against an independent reference, across daylight-saving and other changes.

The reference knows nothing of the trigger: it matches the cron fields itself (from sets drawn with the
line), finds each zone's offset changes by probing offsets, brute-forces every minute within 48 hours of a
change and walks candidate days elsewhere. The rule it encodes is the one docs/messages.md states: fixed
hours keep their local time (a skipped time runs once at the end of the gap, a repeated one at its first
occurrence); wildcard or stepped hours run at every real instant that matches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from f8a_jobs_worker import zones
from f8a_jobs_worker.scheduling.schedule import cron_trigger

ZONES = [
    "Europe/Prague",
    "America/New_York",
    "Australia/Lord_Howe",  # 30-minute daylight saving
    "Asia/Kathmandu",  # +05:30 to +05:45 in 1986
    "America/Sao_Paulo",  # changed at midnight
    "Pacific/Apia",  # skipped 30 December 2011
    "Pacific/Chatham",  # +12:45 / +13:45
    "Africa/Casablanca",  # suspended for Ramadan: four changes a year
    "Antarctica/Troll",  # two-hour daylight saving
    "Europe/Dublin",  # negative daylight saving
    "America/St_Johns",
    "Asia/Tehran",
    "UTC",
]
MAX_RUNS = 400
WINDOW = timedelta(days=3 * 366)
NEAR = timedelta(hours=48)


@dataclass(frozen=True)
class Line:
    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # crontab numbering, Sunday = 0
    fixed_hours: bool

    def matches(self, wall: datetime) -> bool:
        return (
            wall.minute in self.minutes
            and wall.hour in self.hours
            and wall.day in self.days
            and wall.month in self.months
            and (wall.isoweekday() % 7) in self.weekdays  # both day fields must match
        )


def _field(low: int, high: int, *, steps: tuple[int, ...], star: bool = True) -> st.SearchStrategy:
    """A crontab field as (text, values, names-values-only)."""
    every = st.just(("*", frozenset(range(low, high + 1)), False))
    value = st.integers(low, high).map(lambda v: (str(v), frozenset({v}), True))
    listed = st.lists(st.integers(low, high), min_size=2, max_size=3, unique=True).map(
        lambda vs: (",".join(map(str, sorted(vs))), frozenset(vs), True)
    )
    ranged = st.tuples(st.integers(low, high), st.integers(low, high)).map(
        lambda ab: (f"{min(ab)}-{max(ab)}", frozenset(range(min(ab), max(ab) + 1)), True)
    )
    stepped = st.sampled_from(steps).map(
        lambda k: (f"*/{k}", frozenset(range(low, high + 1, k)), False)
    )
    options = [value, listed, ranged, stepped] + ([every] if star else [])
    return st.one_of(*options)


EVERY_DAY = (("*", frozenset(range(1, 32)), False), ("*", frozenset(range(1, 13)), False))
EVERY_WEEKDAY = ("*", frozenset(range(7)), False)


@st.composite
def lines(draw: st.DrawFn, every_day: bool = False) -> Line:
    """A crontab line; with ``every_day``, one whose day fields are ``*`` (so it fires on change days)."""
    minute = draw(_field(0, 59, steps=(5, 15, 20, 30), star=False))
    hour = draw(st.one_of(st.just(("*", frozenset(range(24)), False)), _field(0, 23, steps=(2, 3))))
    if every_day:
        (day, month), weekday = EVERY_DAY, EVERY_WEEKDAY
    else:
        day = draw(st.one_of(st.just(EVERY_DAY[0]), _field(1, 31, steps=(7,))))
        month = draw(st.one_of(st.just(EVERY_DAY[1]), _field(1, 12, steps=(2,))))
        weekday = draw(
            st.one_of(
                st.just(EVERY_WEEKDAY),
                st.just(("1-5", frozenset(range(1, 6)), True)),
                st.integers(0, 6).map(lambda v: (str(v), frozenset({v}), True)),
            )
        )
    text = " ".join(part[0] for part in (minute, hour, day, month, weekday))
    return Line(text, minute[1], hour[1], day[1], month[1], weekday[1], hour[2])


def _changes(
    name: str, start: datetime, end: datetime
) -> list[tuple[datetime, timedelta, timedelta]]:
    """Offset changes found by probing every three hours, then by minutes and seconds in the probe that
    moved (no zone changes twice within three hours)."""
    rules = zones.zone(name)  # the rules the worker reads (the tzdata package)

    def first_moved(moment: datetime, offset: object, step: timedelta) -> datetime:
        while (moment + step).astimezone(rules).utcoffset() == offset:
            moment += step
        return moment

    found = []
    moment, offset = start, start.astimezone(rules).utcoffset()
    while moment < end:
        probe = moment + timedelta(hours=3)
        after = probe.astimezone(rules).utcoffset()
        if after != offset:
            at = first_moved(
                first_moved(moment, offset, timedelta(minutes=1)), offset, timedelta(seconds=1)
            )
            found.append((at + timedelta(seconds=1), offset, after))
        moment, offset = probe, after
    return found


def reference(line: Line, name: str, start: datetime, end: datetime) -> list[datetime]:
    """Every fire time in ``[start, end)``."""
    rules = zones.zone(name)  # the rules the worker reads (the tzdata package)
    changes = _changes(name, start - NEAR - timedelta(days=1), end + NEAR)
    near = [(at - NEAR, at + NEAR) for at, _, _ in changes]

    def is_near(moment: datetime) -> bool:
        return any(low <= moment < high for low, high in near)

    times: set[datetime] = set()
    for low, high in near:  # every minute close to a change
        moment = max(low, start)
        moment += timedelta(seconds=-moment.second % 60, microseconds=-moment.microsecond)
        while moment < min(high, end):
            local = moment.astimezone(rules)
            repeated_again = local.fold == 1 and local.replace(fold=0).astimezone(UTC) != moment
            if line.matches(local) and not (line.fixed_hours and repeated_again):
                times.add(moment)
            moment += timedelta(minutes=1)
    if line.fixed_hours:  # skipped wall times run once, when the gap ends
        for at, before, after in changes:
            if after > before and start <= at < end:
                wall = (at + before).replace(tzinfo=None)
                while wall < (at + after).replace(tzinfo=None):
                    if line.matches(wall):
                        times.add(at)
                        break
                    wall += timedelta(minutes=1)
    day = (start - timedelta(days=1)).astimezone(rules).date()
    while day <= (end + timedelta(days=1)).astimezone(rules).date():  # candidate days elsewhere
        for hour in sorted(line.hours):
            for minute in sorted(line.minutes):
                wall = datetime(day.year, day.month, day.day, hour, minute)
                if not line.matches(wall):
                    break
                moment = wall.replace(tzinfo=rules).astimezone(UTC)
                if start <= moment < end and not is_near(moment):
                    times.add(moment)
        day += timedelta(days=1)
    return sorted(times)


def fire_times(line: Line, name: str, start: datetime) -> tuple[list[datetime], datetime]:
    """The trigger's fire times from ``start``: up to MAX_RUNS, within WINDOW; and where it stopped."""
    trigger = cron_trigger(line.text, start, None, name)
    times: list[datetime] = []
    moment = trigger.get_next_fire_time(None, start)
    while moment is not None and moment < start + WINDOW and len(times) < MAX_RUNS:
        times.append(moment)
        moment = trigger.get_next_fire_time(moment, moment)
    end = times[-1] + timedelta(microseconds=1) if len(times) == MAX_RUNS else start + WINDOW
    return times, end


@st.composite
def starts(draw: st.DrawFn, name: str) -> datetime:
    """A start anywhere from 1971 to 2037."""
    year = draw(st.integers(1971, 2037))
    return datetime(year, 1, 1, tzinfo=UTC) + timedelta(
        seconds=draw(st.integers(0, 365 * 86400 - 1))
    )


@st.composite
def starts_before_a_change(draw: st.DrawFn, name: str) -> datetime:
    """A start in the two days before one of the zone's changes from 1971 to 2037."""
    moment = draw(starts(name))
    ahead = _changes(name, moment, moment + timedelta(days=400))
    if ahead:
        moment = ahead[0][0] - timedelta(seconds=draw(st.integers(0, 2 * 86400)))
    return moment


def check(line: Line, name: str, start: datetime) -> None:
    times, end = fire_times(line, name, start)
    assert times == sorted(set(times)), "strictly increasing"
    rules = zones.zone(name)
    for moment in times:
        assert line.matches(moment.astimezone(rules)) or any(
            at == moment for at, before, after in _changes(name, moment - NEAR, moment + NEAR)
        ), f"{moment} does not match {line.text} in {name}"
    assert times == reference(line, name, start, end)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fire_times_match_the_reference(data: st.DataObject) -> None:
    """Any line, anywhere in time, over up to three years."""
    name = data.draw(st.sampled_from(ZONES), label="zone")
    check(data.draw(lines(), label="line"), name, data.draw(starts(name), label="start"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fire_times_across_a_change_match_the_reference(data: st.DataObject) -> None:
    """Lines that fire every day, from shortly before a change of offset."""
    name = data.draw(st.sampled_from(ZONES[:-1]), label="zone")
    line = data.draw(lines(every_day=True), label="line")
    check(line, name, data.draw(starts_before_a_change(name), label="start"))


@pytest.mark.parametrize(
    ("line", "name", "start", "expected"),
    [
        # spring forward in Prague (02:00 -> 03:00 on 29 March 2026): 02:30 runs once, when the gap ends
        (
            "30 2 * * *",
            "Europe/Prague",
            "2026-03-28T12:00",
            ["03-29T03:00+02:00", "03-30T02:30+02:00"],
        ),
        # fall back (03:00 -> 02:00 on 25 October 2026): 02:30 runs once, at its first occurrence
        (
            "30 2 * * *",
            "Europe/Prague",
            "2026-10-24T12:00",
            ["10-25T02:30+02:00", "10-26T02:30+01:00"],
        ),
        # an hourly line runs the repeated hour twice and has nothing to run in the skipped one
        (
            "30 * * * *",
            "America/New_York",
            "2026-11-01T04:00",
            ["11-01T00:30-04:00", "11-01T01:30-04:00", "11-01T01:30-05:00", "11-01T02:30-05:00"],
        ),
        (
            "30 * * * *",
            "America/New_York",
            "2026-03-08T05:00",
            ["03-08T00:30-05:00", "03-08T01:30-05:00", "03-08T03:30-04:00", "03-08T04:30-04:00"],
        ),
        # Lord Howe moves by 30 minutes: 02:00 and 02:15 are skipped and run once, at 02:30
        (
            "0,15,45 2 * * *",
            "Australia/Lord_Howe",
            "2026-10-03T00:00",
            ["10-04T02:30+11:00", "10-04T02:45+11:00", "10-05T02:00+11:00"],
        ),
    ],
)
def test_documented_examples(line: str, name: str, start: str, expected: list[str]) -> None:
    begin = datetime.fromisoformat(start).replace(tzinfo=UTC)
    trigger = cron_trigger(line, begin, None, name)
    shown = []
    moment = trigger.get_next_fire_time(None, begin)
    for _ in expected:
        shown.append(zones.local(moment, name).isoformat(timespec="minutes")[5:])
        moment = trigger.get_next_fire_time(moment, moment)
    assert shown == expected


@settings(max_examples=100, deadline=None)
@given(line=lines(), day=st.dates(date(1971, 1, 1), date(2037, 12, 31)))
def test_utc_jobs_keep_apschedulers_cron_trigger(line: Line, day: date) -> None:
    """UTC jobs are stored as before; the zoned trigger read in UTC would fire the same times."""
    from apscheduler.triggers.cron import CronTrigger

    from f8a_jobs_worker.scheduling.zoned_cron import ZonedCronTrigger, fixed_hours

    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    stored = cron_trigger(line.text, start, None)
    assert isinstance(stored, CronTrigger)
    zoned = ZonedCronTrigger(stored, "Etc/UTC", fixed_hours(line.text.split()[1]), start)
    first, second = stored.get_next_fire_time(None, start), zoned.get_next_fire_time(None, start)
    for _ in range(20):
        assert first == second
        if first is None:
            break
        first = stored.get_next_fire_time(first, first)
        second = zoned.get_next_fire_time(second, second)
