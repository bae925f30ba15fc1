"""Small helpers shared by tests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from f8a_jobs_worker.events import MemoryEventSink
from f8a_jobs_worker.worker import Worker

T = TypeVar("T")


class MovableClock:
    """The worker's clock, moved by the test (backwards too); ``latest`` is the furthest it has been."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self.latest = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def move(self, **delta: float) -> datetime:
        with self._lock:
            self._now += timedelta(**delta)
            self.latest = max(self.latest, self._now)
            return self._now

    def set(self, moment: datetime) -> None:
        with self._lock:
            self._now = moment
            self.latest = max(self.latest, moment)


def sink_of(worker: Worker) -> MemoryEventSink:
    """The MemoryEventSink a test worker was given."""
    return next(s for s in worker.sink.sinks if isinstance(s, MemoryEventSink))


def eventually(probe: Callable[[], T], timeout: float = 15.0, interval: float = 0.05) -> T:
    """Poll ``probe`` until it returns something truthy; fail with its last value after ``timeout``."""
    deadline = time.monotonic() + timeout
    value = probe()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = probe()
    assert value, f"condition not met within {timeout}s (last value {value!r})"
    return value


def records(path: Path) -> list[dict[str, Any]]:
    """The lines the ``record`` test handler wrote."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def delivered(worker: Worker) -> MemoryEventSink:
    """The worker's in-memory sink once the outbox relay has sent everything committed so far."""
    eventually(lambda: worker.service.scheduler_state()["outbox"]["pending"] == 0)
    return sink_of(worker)
