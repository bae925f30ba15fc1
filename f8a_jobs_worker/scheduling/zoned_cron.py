"""A crontab line read in a named time zone, with the daylight-saving rule Vixie cron made familiar.

APScheduler 3's ``CronTrigger`` takes a time zone too, but does its arithmetic on aware local times: a fixed
time in the spring gap runs an hour late (02:30 becomes 03:30, not the end of the gap), and on the fall-back
day the repeated hour of an hourly line is either lost or, for some start times, run twice. Here the line is
matched on wall-clock time by a UTC ``CronTrigger`` (so every field means what it means for UTC jobs, dates
where both day fields are given included), and each matching wall time is then turned into instants:

- **fixed hours** (the hour field names hours: ``0 2 * * *``, ``30 1,13 * * *``): a time the gap skips runs
  once, at the first instant after the gap; a time that happens twice runs once, at its first occurrence;
- **wildcard or stepped hours** (``0 * * * *``, ``*/15 * * * *``, ``0 */2 * * *``): every real instant that
  matches runs, so the repeated hour runs twice and the skipped one has nothing to run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.triggers.cron import CronTrigger

from f8a_jobs_worker import zones
from f8a_jobs_worker.scheduling.local_trigger import LocalTimeTrigger

_SECOND = timedelta(seconds=1)
_DAY = timedelta(days=1)


def fixed_hours(hour_field: str) -> bool:
    """Whether a crontab hour field names hours (no ``*``, no step): such a job keeps its local time."""
    return "*" not in hour_field and "/" not in hour_field


class ZonedCronTrigger(LocalTimeTrigger):
    """Fire times of a crontab line in zone ``timezone`` (a name), as UTC instants, from ``start_date`` on.

    ``wall`` is the line as a UTC ``CronTrigger`` without start or jitter: it finds wall-clock times that
    match, in order, skipped and repeated ones alike; this class decides which instants each one names.
    """

    __slots__ = ("fixed_hours", "wall")

    def __init__(
        self,
        wall: CronTrigger,
        timezone: str,
        fixed_hours: bool,
        start_date: datetime,
        jitter: int | None = None,
    ) -> None:
        super().__init__(timezone, start_date, jitter)
        self.wall = wall
        self.fixed_hours = fixed_hours

    def first_at_or_after(self, moment: datetime) -> datetime | None:
        """The earliest fire time at or after the UTC instant ``moment``, jitter left out."""
        rules = zones.zone(self.timezone)
        # Wall times before the one of `moment` can still name instants from `moment` on: the repeated
        # ones of a fall-back within the next day, and the skipped ones when `moment` ends a gap.
        offset = min(_offset(at, rules) for at in (moment - _SECOND, moment, moment + _DAY))
        candidate = self.next_wall((moment + offset).replace(tzinfo=None))
        best: datetime | None = None
        while candidate is not None:
            named = zones.wall(candidate, self.timezone)
            # `named.first` never decreases as wall times grow, and `second` is later than `first`:
            # once `first` passes the best instant found, no later wall time can beat it.
            if best is not None and named.first >= best:
                break
            for instant in self._instants(named):
                if instant >= moment and (best is None or instant < best):
                    best = instant
            candidate = self.next_wall(candidate + _SECOND)
        return best

    def _instants(self, named: zones.Wall) -> tuple[datetime, ...]:
        if named.kind is zones.WallKind.REAL:
            return (named.first,)
        if self.fixed_hours:
            return (named.first,)
        if named.kind is zones.WallKind.REPEATED and named.second is not None:
            return (named.first, named.second)
        return ()

    def instants_of(self, wall_time: datetime) -> tuple[datetime, ...]:
        """The instants a matching naive wall time runs at: none, one or two."""
        return self._instants(zones.wall(wall_time, self.timezone))

    def next_wall(self, wall_time: datetime) -> datetime | None:
        """The first naive wall time at or after ``wall_time`` that the line matches."""
        found = self.wall.get_next_fire_time(None, wall_time.replace(tzinfo=UTC))
        return None if found is None else found.replace(tzinfo=None)

    def __getstate__(self) -> dict[str, Any]:
        return {
            "version": 1,
            "wall": self.wall,
            "timezone": self.timezone,
            "fixed_hours": self.fixed_hours,
            "start_date": self.start_date,
            "jitter": self.jitter,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        if state.get("version") != 1:
            raise ValueError(f"zoned cron state version {state.get('version')!r} (expected 1)")
        self.wall = state["wall"]
        self.timezone = state["timezone"]
        self.fixed_hours = state["fixed_hours"]
        self.start_date = state["start_date"]
        self.jitter = state["jitter"]

    def __repr__(self) -> str:
        return (
            f"<ZonedCronTrigger {self.wall} in {self.timezone} from {self.start_date.isoformat()}>"
        )


def _offset(moment: datetime, rules: Any) -> timedelta:
    return moment.astimezone(rules).utcoffset() or timedelta(0)
