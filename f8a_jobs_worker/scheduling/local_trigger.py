"""What the worker's own triggers share: APScheduler's ``get_next_fire_time`` contract over a method that
finds the first fire time at or after an instant, a start bound and jitter."""

from __future__ import annotations

import random
from abc import abstractmethod
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.base import BaseTrigger

_MICROSECOND = timedelta(microseconds=1)


class LocalTimeTrigger(BaseTrigger):  # type: ignore[misc]  # APScheduler ships no type information
    """A trigger of local times in a named zone that fires from ``start_date`` (UTC) on, each run up to
    ``jitter`` seconds late at random. Subclasses say which instants it fires at."""

    __slots__ = ("jitter", "start_date", "timezone")

    def __init__(self, timezone: str, start_date: datetime, jitter: int | None) -> None:
        self.timezone = timezone
        self.start_date = start_date.astimezone(UTC)
        self.jitter = jitter

    @abstractmethod
    def first_at_or_after(self, moment: datetime) -> datetime | None:
        """The earliest fire time at or after the UTC instant ``moment``, jitter left out; None if none."""

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        """The first fire time after ``previous_fire_time`` (or, without one, from ``now``), as
        APScheduler's own triggers answer it, jitter added."""
        if previous_fire_time is not None:
            previous = previous_fire_time.astimezone(UTC)
            after = min(now.astimezone(UTC), previous + _MICROSECOND)
            if after == previous:
                after += _MICROSECOND
        else:
            after = now.astimezone(UTC)
        found = self.first_at_or_after(max(after, self.start_date))
        if found is None or not self.jitter:
            return found
        return found + timedelta(seconds=random.uniform(0, self.jitter))  # noqa: S311
