"""The schedule fields as pure functions: every time form and every error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from f8a_jobs_worker.errors import InvalidSchedule
from f8a_jobs_worker.scheduling.schedule import (
    NOT_GIVEN,
    build_schedule,
    parse_duration,
    parse_grace_time,
    parse_when,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1 week", 604800),
        ("5:00:00", 18000),
        ("32m", 1920),
        ("1 days", 86400),
        ("365 days", 365 * 86400),
        ("99999 days", 99999 * 86400),
        ("1 day, 0:00:00", 86400),
        ("2 days, 3:04:05", 2 * 86400 + 3 * 3600 + 4 * 60 + 5),
        ("1h30m", 5400),
        ("90 seconds", 90),
        ("10", 10),
        (10, 10),
        (2.5, 2.5),
        ("  1 week  ", 604800),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text, "periodically") == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("1 month", "months and years have no fixed length"),
        ("2 years", "months and years have no fixed length"),
        ("often", "cannot parse 'often' as a duration"),
        ("", "cannot parse"),
        ("0s", "must be a finite span longer than zero"),
        ("-5m", "must be a finite span longer than zero"),
        (0, "must be a finite span longer than zero"),
        ("nan", "must be a finite span"),
        ("inf", "must be a finite span"),
        (True, "expected a duration"),
        ([1], "expected a duration, got list"),
    ],
)
def test_bad_durations_name_the_field_and_reason(value: object, reason: str) -> None:
    with pytest.raises(InvalidSchedule) as caught:
        parse_duration(value, "periodically")
    assert caught.value.field == "periodically"
    assert reason in caught.value.message
    assert caught.value.message.startswith("periodically: ")
    assert caught.value.details == [{"path": "$.periodically", "message": caught.value.reason}]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-01T14:56:00+00:00", datetime(2026, 12, 1, 14, 56, tzinfo=UTC)),
        ("2026-12-01T14:56:00Z", datetime(2026, 12, 1, 14, 56, tzinfo=UTC)),
        ("2026-12-01 14:56", datetime(2026, 12, 1, 14, 56, tzinfo=UTC)),
        ("2026-12-01T16:56:00+02:00", datetime(2026, 12, 1, 14, 56, tzinfo=UTC)),
        ("Tue Dec 1 2026, 14:56", datetime(2026, 12, 1, 14, 56, tzinfo=UTC)),
        # No year: the next occurrence. Feb 20 has passed in 2026, so 2027; the weekday is ignored.
        ("Mon Feb 20, 14:56", datetime(2027, 2, 20, 14, 56, tzinfo=UTC)),
        ("Dec 24, 18:00", datetime(2026, 12, 24, 18, 0, tzinfo=UTC)),
        (datetime(2026, 12, 1, 14, 56), datetime(2026, 12, 1, 14, 56, tzinfo=UTC)),
        (None, None),
    ],
)
def test_when_forms_are_utc(text: object, expected: datetime | None) -> None:
    assert parse_when(text, NOW) == expected


@pytest.mark.parametrize("value", ["next tuesday-ish", "", 42, "2026-13-45"])
def test_bad_when(value: object) -> None:
    with pytest.raises(InvalidSchedule) as caught:
        parse_when(value, NOW)
    assert caught.value.field == "when"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (NOT_GIVEN, 3600),
        (None, None),
        (30, 30),
        ("365 days", 365 * 86400),
        ("1 week", 604800),
        ("90", 90),
    ],
)
def test_grace_time(value: object, expected: int | None) -> None:
    assert parse_grace_time(value, 3600) == expected


@pytest.mark.parametrize("value", ["soon", 0, -3, "1 month"])
def test_bad_grace_time(value: object) -> None:
    with pytest.raises(InvalidSchedule) as caught:
        parse_grace_time(value, 3600)
    assert caught.value.field == "misfire_grace_time"


def test_one_shot_without_when_runs_now() -> None:
    schedule = build_schedule(now=NOW)
    assert isinstance(schedule.trigger, DateTrigger)
    assert schedule.first_run == NOW


def test_periodic_without_when_first_runs_now_then_every_interval() -> None:
    schedule = build_schedule(periodically="1 day", now=NOW)
    assert isinstance(schedule.trigger, IntervalTrigger)
    assert schedule.first_run == NOW
    assert schedule.trigger.get_next_fire_time(NOW, NOW) == NOW + timedelta(days=1)


def test_periodic_with_when_starts_then() -> None:
    schedule = build_schedule(periodically="1 week", when="2026-12-01T14:56:00Z", now=NOW)
    assert schedule.first_run is None
    assert schedule.trigger.get_next_fire_time(None, NOW) == datetime(
        2026, 12, 1, 14, 56, tzinfo=UTC
    )


def test_periodic_with_past_when_keeps_its_rhythm() -> None:
    schedule = build_schedule(periodically="1 day", when="2026-11-01T05:00:00Z", now=NOW)
    assert schedule.trigger.get_next_fire_time(None, NOW) == datetime(
        2026, 11, 29, 5, 0, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("0 5 * * *", NOW, datetime(2026, 11, 29, 5, 0, tzinfo=UTC)),
        ("*/15 * * * *", NOW, datetime(2026, 11, 28, 12, 0, tzinfo=UTC)),
        # crontab weekdays: 0 and 7 are Sunday, 1 is Monday (APScheduler 3 alone would read 0 as Monday).
        ("30 6 * * 0", NOW, datetime(2026, 11, 29, 6, 30, tzinfo=UTC)),
        ("30 6 * * 7", NOW, datetime(2026, 11, 29, 6, 30, tzinfo=UTC)),
        ("30 6 * * 1-5", NOW, datetime(2026, 11, 30, 6, 30, tzinfo=UTC)),
        ("30 6 * * mon", NOW, datetime(2026, 11, 30, 6, 30, tzinfo=UTC)),
        ("0 0 1 1 *", NOW, datetime(2027, 1, 1, 0, 0, tzinfo=UTC)),
    ],
)
def test_cron(expression: str, after: datetime, expected: datetime) -> None:
    schedule = build_schedule(cron=expression, now=after)
    assert isinstance(schedule.trigger, CronTrigger)
    assert schedule.trigger.get_next_fire_time(None, after) == expected
    assert schedule.cron == expression


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"cron": "0 5 * *"}, "cron", "has 4 fields, expected 5"),
        ({"cron": "61 5 * * *"}, "cron", "'61 5 * * *'"),
        ({"cron": "0 5 * * 9"}, "cron", "out of range"),
        ({"cron": 5}, "cron", "expected a crontab line"),
        ({"cron": "0 5 * * *", "periodically": "1 day"}, "cron", "give only one of periodically"),
        ({"jitter": "5m"}, "jitter", "only periodic jobs"),
        ({"periodically": "1 day", "jitter": "soon"}, "jitter", "cannot parse"),
        ({"when": "2026-11-01T00:00:00Z"}, "when", "is in the past"),
        ({"periodically": "1 fortnight"}, "periodically", "cannot parse"),
    ],
)
def test_contradictory_or_unparseable_schedules(
    fields: dict[str, object], field: str, reason: str
) -> None:
    with pytest.raises(InvalidSchedule) as caught:
        build_schedule(now=NOW, **fields)
    assert caught.value.field == field
    assert reason in caught.value.reason


def test_jitter_is_kept_on_periodic_triggers() -> None:
    schedule = build_schedule(periodically="1 hour", jitter="2m", now=NOW)
    assert schedule.jitter == 120
    assert schedule.trigger.jitter == 120
