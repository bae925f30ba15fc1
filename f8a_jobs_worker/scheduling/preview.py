"""``schedule.preview`` and ``job.get``'s ``next_runs``: a schedule's next fire times, in UTC and in its zone,
in words, and what it does at each change of the zone's offset among them.

The times are the trigger's own, computed as the scheduler computes them (first run as ``job.create`` sets it,
each next from the one before), jitter left out: a job with jitter runs up to that many seconds after each.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from apscheduler.triggers.base import BaseTrigger

from f8a_jobs_worker import zones
from f8a_jobs_worker.errors import ValidationFailed
from f8a_jobs_worker.job import Job
from f8a_jobs_worker.scheduling.calendar_interval import CalendarIntervalTrigger
from f8a_jobs_worker.scheduling.describe import describe_calendar, describe_cron, describe_interval
from f8a_jobs_worker.scheduling.schedule import Schedule
from f8a_jobs_worker.scheduling.zoned_cron import ZonedCronTrigger

DEFAULT_COUNT = 10
MAX_COUNT = 1000
#: wall times of a change listed by name; more are counted
_LISTED = 12
_MICROSECOND = timedelta(microseconds=1)


def check_count(value: Any, field: str) -> int:
    """A count of runs to show: 1 to :data:`MAX_COUNT`; validation_error naming ``field`` otherwise."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_COUNT:
        message = f"must be a whole number from 1 to {MAX_COUNT}"
        raise ValidationFailed(f"{field} {message}", [{"path": f"$.{field}", "message": message}])
    return value


def _unjittered(trigger: BaseTrigger) -> BaseTrigger:
    if not getattr(trigger, "jitter", None):
        return trigger
    plain = copy.copy(trigger)
    plain.jitter = None
    return plain


def runs_from(trigger: BaseTrigger, first: datetime | None, count: int) -> list[datetime]:
    """``first`` and the fire times after it, ``count`` at most (fewer where the schedule ends)."""
    plain = _unjittered(trigger)
    times: list[datetime] = []
    moment = first
    while moment is not None and len(times) < count:
        times.append(moment)
        moment = plain.get_next_fire_time(moment, moment)
    return times


def run_view(moment: datetime, zone: str) -> dict[str, str]:
    return {"at": moment.isoformat(), "local": zones.local(moment, zone).isoformat()}


def next_runs(job: Job, count: int) -> list[dict[str, str]]:
    """The job's next ``count`` runs from its next run time (none while paused)."""
    return [run_view(m, job.timezone) for m in runs_from(job.trigger, job.next_run_time, count)]


def preview(schedule: Schedule, now: datetime, count: int) -> dict[str, Any]:
    """The ``schedule.preview`` result for a schedule a ``job.create`` at ``now`` would get."""
    plain = _unjittered(schedule.trigger)
    first = schedule.first_run or plain.get_next_fire_time(None, now)
    times = runs_from(plain, first, count)
    zone = schedule.timezone
    result: dict[str, Any] = {
        "description": describe(schedule),
        "timezone": zone,
        "jitter": schedule.jitter,
        "runs": [run_view(moment, zone) for moment in times],
        "changes": [],
    }
    if len(times) > 1:
        window = zones.changes(zone, times[0], times[-1] + _MICROSECOND)
        result["changes"] = [ChangeEffect.of(change, schedule, zone).view() for change in window]
    return result


def describe(schedule: Schedule) -> str:
    if schedule.cron is not None:
        text = describe_cron(schedule.cron, schedule.timezone)
    elif isinstance(schedule.trigger, CalendarIntervalTrigger):
        text = describe_calendar(schedule.trigger)
    elif schedule.periodically is not None:
        text = describe_interval(schedule.periodically, schedule.timezone)
    else:
        moment = zones.local(schedule.when, schedule.timezone)
        return f"once, at {moment:%Y-%m-%d %H:%M} {schedule.timezone}"
    if schedule.jitter:
        text += f"; each run up to {schedule.jitter} s later at random"
    return text


def _hhmm(moment: datetime) -> str:
    return f"{moment:%H:%M}"


def _shift(delta: timedelta) -> str:
    minutes = int(delta.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return sign + " ".join(
        t for t in (f"{hours} h" if hours else "", f"{rest} min" if rest else "") if t
    )


def _offset(delta: timedelta) -> str:
    minutes = int(delta.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@dataclass(frozen=True)
class ChangeEffect:
    """One change of offset and what the schedule does at it: the wall times of the schedule that the
    change skips or repeats, and the instants they run at."""

    change: zones.Change
    walls: list[datetime]
    instants: list[datetime]
    zone: str
    sentence: str

    @classmethod
    def of(cls, change: zones.Change, schedule: Schedule, zone: str) -> ChangeEffect:
        clocks = (
            f"clocks go {'forward' if change.forward else 'back'} from "
            f"{_hhmm(change.at + change.before)} to {_hhmm(change.at + change.after)}"
        )
        trigger = schedule.trigger
        if isinstance(trigger, ZonedCronTrigger):
            walls = _walls(trigger, *_changed_walls(change))
            instants = sorted({i for w in walls for i in trigger.instants_of(w)})
            fixed = trigger.fixed_hours
        elif isinstance(trigger, CalendarIntervalTrigger):
            walls, fixed = _calendar_walls(trigger, change, zone), True
            instants = [zones.instant(wall, zone) for wall in walls]
        else:  # elapsed time (a cron line in UTC sees no change)
            shift = _shift(change.after - change.before)
            sentence = (
                f"{clocks}: runs keep their spacing in elapsed time; local times move by {shift}"
            )
            return cls(change, [], [], zone, sentence)
        return cls(change, walls, instants, zone, _sentence(clocks, change, walls, instants, fixed))

    def view(self) -> dict[str, Any]:
        return {
            "at": self.change.at.isoformat(),
            "offset_before": _offset(self.change.before),
            "offset_after": _offset(self.change.after),
            "kind": "forward" if self.change.forward else "back",
            "wall_times": [_hhmm(w) for w in self.walls[:_LISTED]],
            "runs": [run_view(m, self.zone) for m in self.instants[:_LISTED]],
            "effect": self.sentence,
        }


def _changed_walls(change: zones.Change) -> tuple[datetime, datetime]:
    """The naive wall times a change skips or repeats: ``[low, high)``."""
    low, high = sorted((change.at + change.before, change.at + change.after))
    return low.replace(tzinfo=None), high.replace(tzinfo=None)


def _calendar_walls(
    trigger: CalendarIntervalTrigger, change: zones.Change, zone: str
) -> list[datetime]:
    """The calendar interval's run on the change's day, if it has one there that the change skips or
    repeats."""
    low, high = _changed_walls(change)
    wall = datetime.combine(low.date(), trigger.anchor.time())
    if not low <= wall < high:
        return []
    moment = zones.instant(wall, zone)
    return [wall] if trigger.first_at_or_after(moment) == moment else []


def _walls(trigger: ZonedCronTrigger, low: datetime, high: datetime) -> list[datetime]:
    """The wall times in ``[low, high)`` the cron line matches."""
    found: list[datetime] = []
    moment = trigger.next_wall(low)
    while moment is not None and moment < high:
        found.append(moment)
        moment = trigger.next_wall(moment + timedelta(seconds=1))
    return found


def _sentence(
    clocks: str,
    change: zones.Change,
    walls: list[datetime],
    instants: list[datetime],
    fixed_hours: bool,
) -> str:
    """What the schedule does at ``change`` in words; ``fixed_hours``: it keeps its local times."""
    if not walls:
        changed = "skipped" if change.forward else "repeated"
        return f"{clocks}: no run of this schedule falls in the {changed} time"
    named = _join([_hhmm(w) for w in walls[:_LISTED]]) + (" ..." if len(walls) > _LISTED else "")
    several = len(walls) > 1
    if change.forward:
        missing = f"{named} {'do' if several else 'does'} not exist that day"
        if not instants:
            return f"{clocks}: {missing}; nothing runs for it"
        runs = "they run" if several else "it runs"
        return f"{clocks}: {missing}; {runs} once, at {_hhmm(instants[0] + change.after)}"
    happens = f"{named} {'happen' if several else 'happens'} twice"
    subject = "each runs" if several else "it runs"
    if fixed_hours:
        return f"{clocks}: {happens}; {subject} once, at the first ({_offset(change.before)})"
    return f"{clocks}: {happens}; {subject} at both ({_offset(change.before)}, {_offset(change.after)})"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
