"""Wall-clock time, read through one injectable clock so that tests can move it (a daylight-saving change,
a run due next week) without waiting.

What measures an interval (a heartbeat's age, a handler's duration, a retry's wait) reads
``time.monotonic``/``time.perf_counter``, which no clock setting may move; what decides *when* (a job's next
run, lateness, a run due, the time an event or a record carries) reads the worker's :class:`Clock`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


SYSTEM = SystemClock()
