"""A schedule in plain English ("at 06:00 on Monday to Friday, Europe/Prague"), for previews and the CLI.

Written here rather than taken from a cron-describing library: those describe crontab, where a day of month
and a day of week given together mean either one; here both must match (APScheduler's reading), and the
day fields also take APScheduler's own forms (``last``, ``2nd mon``), which are quoted as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

from f8a_jobs_worker.scheduling.calendar_interval import CalendarIntervalTrigger

MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
WEEKDAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_NAMES = {name[:3].lower(): index for index, name in enumerate(WEEKDAYS[:7])}
_MONTH_NAMES = {name[:3].lower(): index + 1 for index, name in enumerate(MONTHS)}
_PART = re.compile(r"^(?P<base>\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(?P<step>\d+))?$")


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _value(text: str, names: dict[str, int]) -> int | None:
    if text.isdigit():
        return int(text)
    return names.get(text[:3]) if len(text) == 3 else None


def _parts(field: str, label: Callable[[int], str], names: dict[str, int]) -> list[str] | None:
    """Each comma-separated part of a field in words; None where one is not a plain value, range or step."""
    words: list[str] = []
    for part in field.lower().split(","):
        match = _PART.match(part)
        if match is None:
            return None
        base, step = match["base"], match["step"]
        if base == "*":
            words.append(f"every {_ordinal(int(step))}" if step else "every")
            continue
        low_text, _, high_text = base.partition("-")
        low, high = _value(low_text, names), _value(high_text, names) if high_text else None
        if low is None or (high_text and high is None):
            return None
        text = label(low) if high is None else f"{label(low)} to {label(high)}"
        words.append(f"every {_ordinal(int(step))} from {text}" if step else text)
    return words


def _ordinal(number: int) -> str:
    suffix = (
        "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    )
    return f"{number}{suffix}"


def _plain_values(field: str) -> list[int] | None:
    if not re.fullmatch(r"\d+(,\d+)*", field):
        return None
    return sorted({int(v) for v in field.split(",")})


def _time_of_day(minute: str, hour: str) -> str:
    minutes, hours = _plain_values(minute), _plain_values(hour)
    if minutes is not None and hours is not None and len(minutes) * len(hours) <= 6:
        return "at " + _join([f"{h:02d}:{m:02d}" for h in hours for m in minutes])
    if minute == "*":
        minute_text = "every minute"
    elif minute.startswith("*/"):
        minute_text = f"every {minute[2:]} minutes"
    else:
        words = _parts(minute, str, {})
        minute_text = f"at minute {_join(words)}" if words else f"at minutes {minute!r}"
    if hour == "*":
        return minute_text + ("" if minute == "*" or minute.startswith("*/") else " of every hour")
    if hour.startswith("*/") and hour[2:].isdigit():
        return f"{minute_text} of every {_ordinal(int(hour[2:]))} hour"
    words = _parts(hour, lambda h: f"{h:02d}", {})
    return f"{minute_text} of hours {_join(words) if words else repr(hour)}"


def describe_cron(line: str, zone: str) -> str:
    """``line`` (5 fields) in words, with the zone it is read in."""
    minute, hour, day, month, weekday = line.split()
    text = [_time_of_day(minute, hour)]
    if day == "*" and weekday == "*" and _plain_values(hour) is not None:
        text.append("every day")
    if day != "*":
        text.append(_days_of_month(day))
    if weekday != "*":
        words = _parts(weekday, lambda d: WEEKDAYS[d % 8], _NAMES)
        joined = _join(words) if words else repr(weekday)
        text.append(f"if it is a {joined}" if day != "*" else f"on {joined}")
    if month != "*":
        words = _parts(month, lambda m: MONTHS[(m - 1) % 12], _MONTH_NAMES)
        text.append(f"in {_join(words)}" if words else f"in month {month!r}")
    return " ".join(text) + f", {zone}"


def _days_of_month(day: str) -> str:
    if day.startswith("*/") and day[2:].isdigit():
        return f"on every {_ordinal(int(day[2:]))} day of the month"
    words = _parts(day, str, {})
    if words is None:
        return f"on day-of-month {day!r}"
    plural = "s" if "," in day or "-" in day else ""
    return f"on day{plural} {_join(words)} of the month"


def describe_interval(interval: timedelta, zone: str) -> str:
    """An elapsed-time interval: it keeps its spacing in UTC, whatever the zone's changes."""
    seconds = int(interval.total_seconds())
    units = [("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)]
    parts = []
    for name, size in units:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {name}{'s' if count > 1 else ''}")
    text = f"every {_join(parts)} of elapsed time"
    return (
        text if zone == "UTC" else f"{text} (its local times move when {zone} changes its offset)"
    )


def describe_calendar(trigger: CalendarIntervalTrigger) -> str:
    """Every N days, weeks, months or years at the anchor's local time (and day, for months and years)."""
    anchor, interval = trigger.anchor, trigger.interval
    every = "every " + ("" if interval.text.startswith("1 ") else interval.text.split()[0] + " ")
    unit = interval.text.split()[1].rstrip("s")
    when = f"at {anchor:%H:%M}"
    if unit == "week":
        when += f" on {WEEKDAYS[anchor.isoweekday() % 7]}"
    elif unit == "month":
        when += f" on day {anchor.day}" + (
            " (the last day in shorter months)" if anchor.day > 28 else ""
        )
    elif unit == "year":
        when += f" on {anchor.day} {MONTHS[anchor.month - 1]}"
    return f"{every}{unit}{'s' if not interval.text.startswith('1 ') else ''} {when}, {trigger.timezone}"
