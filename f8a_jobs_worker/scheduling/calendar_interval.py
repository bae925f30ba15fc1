"""``calendar_interval``: every N days, weeks, months or years at the same local time ("every day at 06:00",
"every month on the 15th at 02:30"), distinct from ``periodically``, which counts elapsed seconds.

The first run (``when``, or now) fixes the local date and time; run *k* is that date moved by *k* intervals
(a day the month lacks, such as 31 April, means the month's last day), at that time, read by the rule for
fixed local times: a time the zone skips runs at the end of the gap, a time it repeats at its first occurrence.
So a daily job at 06:00 stays at 06:00 local across daylight-saving changes, 23 or 25 hours apart there.
"""

from __future__ import annotations

import calendar
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from f8a_jobs_worker import zones
from f8a_jobs_worker.errors import InvalidSchedule
from f8a_jobs_worker.scheduling.local_trigger import LocalTimeTrigger

_SPEC = re.compile(r"^\s*(?:(\d{1,5})\s*)?(day|week|month|year)s?\s*$", re.IGNORECASE)
#: the most runs apart :meth:`CalendarIntervalTrigger.first_at_or_after` guesses wrong by (clamping, changes)
_SLACK = 2


@dataclass(frozen=True)
class Interval:
    """A whole number of months and days; weeks are 7 days, years 12 months."""

    months: int
    days: int
    text: str

    @property
    def approx(self) -> timedelta:
        """Its length on average, for a first guess of how many intervals a span holds."""
        return timedelta(days=self.days + self.months * 365.2425 / 12)


def parse_interval(value: Any) -> Interval:
    """ "1 day", "2 weeks", "month", "3 months", "1 year": invalid_schedule naming the field otherwise."""
    match = _SPEC.match(value) if isinstance(value, str) else None
    count = int(match[1] or 1) if match else 0
    if match is None or count < 1:
        raise InvalidSchedule.of(
            "calendar_interval",
            f"{value!r}: expected a count and a unit, e.g. '1 day', '2 weeks', '1 month', '1 year'",
        )
    unit = match[2].lower()
    months = {"month": count, "year": 12 * count}.get(unit, 0)
    days = {"day": count, "week": 7 * count}.get(unit, 0)
    if months * 31 + days > 100_000:
        raise InvalidSchedule.of("calendar_interval", f"{value!r} is longer than 100000 days")
    return Interval(months, days, f"{count} {unit}{'s' if count > 1 else ''}")


def _add_months(moment: datetime, months: int) -> datetime:
    year, month = divmod(moment.month - 1 + months, 12)
    year += moment.year
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


class CalendarIntervalTrigger(LocalTimeTrigger):
    """Runs every ``interval`` from the naive local ``anchor`` in zone ``timezone``, from ``start_date`` on."""

    __slots__ = ("anchor", "interval")

    def __init__(
        self,
        interval: Interval,
        anchor: datetime,
        timezone: str,
        start_date: datetime,
        jitter: int | None = None,
    ) -> None:
        super().__init__(timezone, start_date, jitter)
        self.interval = interval
        self.anchor = anchor

    def run(self, index: int) -> datetime:
        """The instant of run ``index`` (0: the anchor; negative ones lie before it)."""
        wall = _add_months(self.anchor, index * self.interval.months)
        return zones.instant(wall + timedelta(days=index * self.interval.days), self.timezone)

    def first_at_or_after(self, moment: datetime) -> datetime | None:
        """The earliest run at or after ``moment`` (jitter left out); None beyond the calendar."""
        origin = zones.instant(self.anchor, self.timezone)
        index = math.floor((moment - origin) / self.interval.approx) - _SLACK
        try:
            while self.run(index) < moment:
                index += 1
            while self.run(index - 1) >= moment:
                index -= 1
            return self.run(index)
        except (OverflowError, ValueError):  # past year 9999
            return None

    def __getstate__(self) -> dict[str, Any]:
        return {
            "version": 1,
            "months": self.interval.months,
            "days": self.interval.days,
            "text": self.interval.text,
            "anchor": self.anchor,
            "timezone": self.timezone,
            "start_date": self.start_date,
            "jitter": self.jitter,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        if state.get("version") != 1:
            raise ValueError(
                f"calendar interval state version {state.get('version')!r} (expected 1)"
            )
        self.interval = Interval(state["months"], state["days"], state["text"])
        self.anchor = state["anchor"]
        self.timezone = state["timezone"]
        self.start_date = state["start_date"]
        self.jitter = state["jitter"]

    def __repr__(self) -> str:
        return f"<CalendarIntervalTrigger every {self.interval.text} from {self.anchor} {self.timezone}>"
