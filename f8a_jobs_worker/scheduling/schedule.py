"""Schedule fields of a job (``periodically``, ``cron``, ``jitter``, ``when``, ``misfire_grace_time``,
``timezone``) as pure functions from what users write to triggers. Times without an offset are read in the
job's zone; every time that comes out is a UTC instant.

Every failure is an :class:`~f8a_jobs_worker.errors.InvalidSchedule` naming the field and the reason.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from dateutil import parser as date_parser
from pytimeparse.timeparse import timeparse as parse_timespan

from f8a_jobs_worker import zones
from f8a_jobs_worker.errors import InvalidSchedule
from f8a_jobs_worker.scheduling.calendar_interval import CalendarIntervalTrigger, parse_interval
from f8a_jobs_worker.scheduling.zoned_cron import ZonedCronTrigger, fixed_hours


class _NotGiven(Enum):
    """Marks a field that was not given at all, as opposed to given as null."""

    NOT_GIVEN = "not given"


NOT_GIVEN = _NotGiven.NOT_GIVEN

_CALENDAR_UNITS = re.compile(r"\b(mo|mon|month|months|y|yr|yrs|year|years)\b", re.IGNORECASE)
_PAST_TOLERANCE = timedelta(seconds=60)
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


#: the longest span a schedule field takes: long enough for any schedule, short enough that no date
#: arithmetic on it can leave the calendar (with ``when`` before EARLIEST/LATEST_WHEN)
MAX_SPAN_DAYS = 100_000
EARLIEST_WHEN = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_WHEN = datetime(9000, 1, 1, tzinfo=UTC)


def parse_duration(value: Any, field: str) -> timedelta:
    """A positive span: seconds as a number, or text such as "1 week", "5:00:00", "32m", "1 day, 0:00:00"."""
    seconds = _text_seconds(value, field) if isinstance(value, str) else _seconds(value, field)
    if not math.isfinite(seconds) or seconds <= 0:
        raise InvalidSchedule.of(field, f"{value!r} must be a finite span longer than zero")
    if seconds > MAX_SPAN_DAYS * 86400:
        raise InvalidSchedule.of(field, f"{value!r} is longer than {MAX_SPAN_DAYS} days")
    return timedelta(seconds=seconds)


@functools.lru_cache(maxsize=512)
def _text_seconds(value: str, field: str) -> float:
    """:func:`_seconds` of a text, remembered: a batch of creates repeats the same few ("1 day")."""
    return _seconds(value, field)


def _seconds(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidSchedule.of(
            field, f"expected a duration, got {type(value).__name__} {value!r}"
        )
    if not isinstance(value, str):
        try:
            return float(value)
        except OverflowError:  # an integer beyond a float
            return math.inf
    text = value.strip()
    if _CALENDAR_UNITS.search(text):
        raise InvalidSchedule.of(
            field, f"{value!r}: months and years have no fixed length; use days, e.g. '30 days'"
        )
    try:
        return float(text)
    except ValueError:
        pass
    try:
        seconds = parse_timespan(text)
    except (ValueError, OverflowError):
        seconds = None
    if seconds is None:
        raise InvalidSchedule.of(
            field, f"cannot parse {value!r} as a duration (e.g. '1 week', '5:00:00', '32m')"
        )
    return float(seconds)


def parse_when(value: Any, now: datetime, zone: str = zones.DEFAULT_ZONE) -> datetime | None:
    """A UTC datetime from ISO 8601 or a loose form like "Mon Feb 20, 14:56" (weekday ignored).

    A date written without a year means its next occurrence: "Feb 20" after Feb 20 is next year's.
    Times without an offset are read in ``zone`` (:func:`f8a_jobs_worker.zones.instant`); times with one
    are converted to UTC.
    """
    found = when_and_wall(value, now, zone)
    return None if found is None else found[0]


def when_and_wall(
    value: Any, now: datetime, zone: str = zones.DEFAULT_ZONE
) -> tuple[datetime, datetime] | None:
    """:func:`parse_when`'s instant, and the naive local time it was written as (a time without an offset
    as written, even one the zone skips; else the instant's local time in ``zone``)."""
    if value is None:
        return None
    try:
        written = _when(value, now, zone)
        moment = _as_utc(written, zone)
    except ValueError as exc:
        raise InvalidSchedule.of("when", str(exc)) from None
    if not EARLIEST_WHEN <= moment < LATEST_WHEN:
        raise InvalidSchedule.of(
            "when",
            f"{moment.isoformat()} is outside {EARLIEST_WHEN.year} to {LATEST_WHEN.year - 1}",
        )
    wall = written if written.tzinfo is None else zones.local_naive(moment, zone)
    return moment, wall


def _when(value: Any, now: datetime, zone: str) -> datetime:
    """The date and time as written (naive without an offset), the year resolved."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value.strip():
        raise InvalidSchedule.of("when", f"expected a date and time, got {value!r}")
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        pass
    try:
        # Two defaults that differ only in the year reveal whether the text gave one.
        first = date_parser.parse(value, default=datetime(2000, 1, 1))
        second = date_parser.parse(value, default=datetime(2004, 1, 1))
        if first.year == second.year:
            return first
        return _next_occurrence(first, now, zone)
    except (ValueError, OverflowError):
        raise InvalidSchedule.of(
            "when",
            f"cannot parse {value!r} as a date and time "
            "(use ISO 8601 such as '2026-12-01T14:56:00Z', or 'Mon Feb 20, 14:56')",
        ) from None


def _next_occurrence(moment: datetime, now: datetime, zone: str) -> datetime:
    """A date given without a year: its next occurrence (Feb 29 in the next leap year)."""
    for year in range(now.year, now.year + 9):
        try:
            candidate = moment.replace(year=year)
            if _as_utc(candidate, zone) >= now - _PAST_TOLERANCE:
                return candidate
        except ValueError:  # Feb 29 outside a leap year
            continue
    raise ValueError(f"{moment:%b %d} does not occur")


def parse_grace_time(value: Any, default: int | None) -> int | None:
    """``misfire_grace_time`` in whole seconds; None (null) means run however late."""
    if value is NOT_GIVEN:
        return default
    if value is None:
        return None
    span = parse_duration(value, "misfire_grace_time")
    return max(1, round(span.total_seconds()))


def _as_utc(moment: datetime, zone: str) -> datetime:
    """UTC (a time without an offset read in ``zone``); one that would leave the calendar raises
    ValueError."""
    try:
        return zones.instant(moment, zone) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{moment.isoformat()} is out of range in UTC") from None


def _weekday_names(field: str) -> str:
    """Translate crontab weekday numbers (0 and 7 are Sunday) to names.

    APScheduler 3 numbers weekdays from Monday = 0, unlike crontab; names mean the same to both.
    """
    names: list[str] = []
    for part in field.lower().split(","):
        base, _, step_text = part.partition("/")
        if not re.fullmatch(r"\d+(-\d+)?|\*", base):
            if step_text or not re.fullmatch(r"[a-z]{3}(-[a-z]{3})?", base):
                raise ValueError(f"unsupported day-of-week {part!r}")
            names.append(base)
            continue
        low, _, high = base.partition("-")
        first, last = (0, 6) if base == "*" else (int(low), int(high or low))
        step = int(step_text) if step_text else 1
        if not (0 <= first <= 7 and 0 <= last <= 7 and first <= last and step >= 1):
            raise ValueError(f"day-of-week {part!r} is out of range 0-7")
        if base == "*" and not step_text:
            return "*"
        names.extend(_WEEKDAYS[day] for day in range(first, last + 1, step))
    return ",".join(dict.fromkeys(names))


def cron_trigger(
    expression: str, start: datetime, jitter: int | None, timezone: str = zones.DEFAULT_ZONE
) -> BaseTrigger:
    """A trigger from a 5-field crontab line: minute hour day-of-month month day-of-week, read in
    ``timezone`` (an APScheduler ``CronTrigger`` in UTC, as every release has stored, or a
    :class:`ZonedCronTrigger` in any other zone)."""
    values = expression.split()
    if len(values) != 5:
        raise InvalidSchedule.of("cron", f"{expression!r} has {len(values)} fields, expected 5")
    minute, hour, day, month, day_of_week = values
    zoned = timezone != zones.DEFAULT_ZONE
    try:
        wall = CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=_weekday_names(day_of_week),
            start_date=None if zoned else start,
            jitter=None if zoned else jitter,
            timezone=UTC,
        )
    except (ValueError, OverflowError) as exc:
        raise InvalidSchedule.of("cron", f"{expression!r}: {exc}") from None
    if not zoned:
        return wall
    return ZonedCronTrigger(wall, timezone, fixed_hours(hour), start, jitter)


@dataclass(frozen=True)
class Schedule:
    """A validated schedule: its APScheduler trigger plus the normalised fields that produced it.

    ``first_run`` is set when the first run is "now" (no ``when`` given), which an interval trigger alone
    would put one interval later.
    """

    trigger: BaseTrigger
    when: datetime
    periodically: timedelta | None
    cron: str | None
    jitter: int | None
    first_run: datetime | None = None
    timezone: str = zones.DEFAULT_ZONE
    calendar_interval: str | None = None

    @property
    def one_shot(self) -> bool:
        return self.cron is None and self.periodically is None and self.calendar_interval is None

    def meta(self) -> dict[str, Any]:
        """What the job's meta keeps of the schedule beyond its trigger: the cron line as written, the zone,
        the calendar interval."""
        return {
            "cron": self.cron,
            "timezone": self.timezone,
            "calendar_interval": self.calendar_interval,
        }


def build_schedule(
    *,
    periodically: Any = None,
    cron: Any = None,
    calendar_interval: Any = None,
    jitter: Any = None,
    when: Any = None,
    timezone: Any = None,
    now: datetime,
) -> Schedule:
    """Check the schedule fields together and build the trigger they describe, ``now`` being the
    worker's clock's time (the first run of a job without ``when``)."""
    kinds = (
        ("periodically", periodically),
        ("cron", cron),
        ("calendar_interval", calendar_interval),
    )
    given = [name for name, value in kinds if value is not None]
    if len(given) > 1:
        raise InvalidSchedule.of(
            given[-1],
            f"give only one of periodically, cron and calendar_interval (got {', '.join(given)})",
        )
    zone = zones.DEFAULT_ZONE if timezone is None else zones.check_zone(timezone)
    written = when_and_wall(when, now, zone)
    start = None if written is None else written[0]
    jitter_s = _jitter(jitter, bool(given))
    if calendar_interval is not None:
        anchor = zones.local_naive(now, zone) if written is None else written[1]
        calendar = parse_interval(calendar_interval)
        trigger = CalendarIntervalTrigger(calendar, anchor, zone, start or now, jitter_s)
        first_run = None if start else now
        return Schedule(trigger, start or now, None, None, jitter_s, first_run, zone, calendar.text)
    if cron is not None:
        if not isinstance(cron, str):
            raise InvalidSchedule.of("cron", f"expected a crontab line, got {cron!r}")
        trigger = cron_trigger(cron, start or now, jitter_s, zone)
        if trigger.get_next_fire_time(None, start or now) is None:
            raise InvalidSchedule.of("cron", f"{cron!r} never fires (no such date)")
        return Schedule(trigger, start or now, None, cron, jitter_s, None, zone)
    if periodically is not None:
        return _periodic(periodically, start, now, jitter_s, zone)
    if start is not None and start < now - _PAST_TOLERANCE:
        raise InvalidSchedule.of(
            "when", f"{start.isoformat()} is in the past; omit when to run the job now"
        )
    run_at = start or now
    trigger = DateTrigger(run_date=run_at, timezone=UTC)
    return Schedule(trigger, run_at, None, None, None, run_at, zone)


def _jitter(jitter: Any, periodic: bool) -> int | None:
    """``jitter`` in whole seconds (at least one); only periodic schedules take it."""
    if jitter is None:
        return None
    if not periodic:
        raise InvalidSchedule.of(
            "jitter", "only periodic jobs (periodically, cron or calendar_interval) take jitter"
        )
    return max(1, round(parse_duration(jitter, "jitter").total_seconds()))


def _periodic(
    periodically: Any, start: datetime | None, now: datetime, jitter_s: int | None, zone: str
) -> Schedule:
    """Every ``periodically`` of elapsed time from ``start`` (or now, which is then its first run)."""
    interval = parse_duration(periodically, "periodically")
    if interval < timedelta(seconds=1):
        raise InvalidSchedule.of("periodically", f"{periodically!r} is shorter than one second")
    trigger = IntervalTrigger(
        seconds=interval.total_seconds(), start_date=start or now, jitter=jitter_s, timezone=UTC
    )
    first_run = None if start else now
    return Schedule(trigger, start or now, interval, None, jitter_s, first_run, zone)
