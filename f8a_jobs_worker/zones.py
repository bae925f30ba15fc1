"""Named time zones (IANA) and the two questions every schedule in local time asks of them: which instant a
wall-clock time names, and where a zone's rules change.

The rules come from the ``tzdata`` package, not from the host's ``/usr/share/zoneinfo``: replicas on different
images read the same rules, and :func:`rules_version` says which ones (the worker records it in
``scheduler.state``). Zones are passed around by name; only this module holds ``ZoneInfo`` objects.
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from enum import Enum
from zoneinfo import ZoneInfo

import tzdata

from f8a_jobs_worker.errors import ValidationFailed

#: the zone of every job that names none (all jobs stored before zones existed)
DEFAULT_ZONE = "UTC"

_SECOND = timedelta(seconds=1)


def rules_version() -> str:
    """The IANA release of the rules in use, such as ``2026f``."""
    return str(tzdata.IANA_VERSION)


@functools.cache
def zone_names() -> frozenset[str]:
    """Every zone name the rules know, links such as ``US/Eastern`` included."""
    text = importlib.resources.files("tzdata").joinpath("zones").read_text(encoding="ascii")
    return frozenset(text.split())


def check_zone(name: object, path: str = "$.timezone") -> str:
    """``name`` if it is a zone the rules know; a validation_error naming it (and close names) if not."""
    if isinstance(name, str) and name in zone_names():
        return name
    hint = ""
    if isinstance(name, str):
        close = difflib.get_close_matches(name, sorted(zone_names()), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
    message = f"unknown time zone {name!r}{hint}; use an IANA name such as 'Europe/Prague'"
    raise ValidationFailed(message, [{"path": path, "message": message}])


@functools.lru_cache(maxsize=1024)
def zone(name: str) -> tzinfo:
    """The rules of zone ``name`` (checked with :func:`check_zone`)."""
    if name == DEFAULT_ZONE:
        return UTC
    check_zone(name)
    parts = name.split("/")
    resource = importlib.resources.files("tzdata.zoneinfo").joinpath(*parts)
    with resource.open("rb") as data:
        return ZoneInfo.from_file(data, key=name)


class WallKind(Enum):
    """What a wall-clock time is in a zone on a given day."""

    REAL = "real"  # happens once
    SKIPPED = "skipped"  # falls in a gap (clocks moved forward over it)
    REPEATED = "repeated"  # happens twice (clocks moved back over it)


@dataclass(frozen=True)
class Wall:
    """The instants a wall-clock time names: ``first`` always (for a skipped time, the first instant after
    the gap), ``second`` for a repeated time only."""

    kind: WallKind
    first: datetime
    second: datetime | None = None


def wall(moment: datetime, name: str) -> Wall:
    """What the naive wall-clock time ``moment`` names in zone ``name``, as UTC instants."""
    rules = zone(name)
    early = moment.replace(tzinfo=rules, fold=0).astimezone(UTC)
    late = moment.replace(tzinfo=rules, fold=1).astimezone(UTC)
    if early == late:
        return Wall(WallKind.REAL, early)
    if early < late:
        return Wall(WallKind.REPEATED, early, late)
    # In a gap fold=0 reads the time with the offset before the change (landing after the gap) and fold=1
    # with the offset after it (landing before): the change lies between the two.
    return Wall(WallKind.SKIPPED, _change_between(late, early, rules))


def instant(moment: datetime, name: str) -> datetime:
    """The UTC instant a naive wall-clock time names in zone ``name``, by the rule for fixed local times:
    a skipped time is the first instant after the gap, a repeated one its first occurrence."""
    return wall(moment, name).first


def _change_between(before: datetime, after: datetime, rules: tzinfo) -> datetime:
    """The first instant in ``(before, after]`` with the offset ``after`` has (rules change on a second)."""
    target = after.astimezone(rules).utcoffset()
    low, high = before, after
    while high - low > _SECOND:
        middle = low + (high - low) / 2
        if middle.astimezone(rules).utcoffset() == target:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0) if high.microsecond else high


def local(moment: datetime, name: str) -> datetime:
    """The UTC instant ``moment`` in zone ``name``, aware."""
    return moment.astimezone(zone(name))


def local_naive(moment: datetime, name: str) -> datetime:
    """The wall-clock time of instant ``moment`` in zone ``name``, naive."""
    return local(moment, name).replace(tzinfo=None)


@dataclass(frozen=True)
class Change:
    """One change of a zone's offset: at ``at`` (UTC) clocks go from ``before`` to ``after``."""

    at: datetime
    before: timedelta
    after: timedelta

    @property
    def forward(self) -> bool:
        return self.after > self.before


def changes(name: str, start: datetime, end: datetime) -> list[Change]:
    """The offset changes of zone ``name`` in ``[start, end)`` (UTC instants), in order.

    Probes every six hours (no zone changes its offset twice within six hours), then narrows each change
    down to its second.
    """
    rules = zone(name)
    found: list[Change] = []
    step = timedelta(hours=6)
    low = start
    low_offset = start.astimezone(rules).utcoffset()
    while low < end:
        high = min(low + step, end)
        high_offset = high.astimezone(rules).utcoffset()
        if high_offset != low_offset and low_offset is not None and high_offset is not None:
            at = _change_between(low, high, rules)
            if start <= at < end:
                found.append(Change(at, low_offset, high_offset))
        low, low_offset = high, high_offset
    return found
