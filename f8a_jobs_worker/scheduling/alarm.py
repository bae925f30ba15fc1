"""Callbacks at a moment a little ahead: the runs a scheduler pass claimed before they were due.

One thread and a heap, not a timer thread per run: at a thousand runs a second, the runs claimed ahead are
dozens at any time. A callback that fails is logged; the others still run. :meth:`AlarmClock.stop` runs the
callbacks still waiting, each at its moment (never early), then ends the thread.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from f8a_jobs_worker.clock import Clock

log = logging.getLogger(__name__)

Callback = Callable[[], Any]


class AlarmClock:
    def __init__(self, clock: Clock, name: str = "f8a-alarm") -> None:
        self.clock = clock
        self.name = name
        self._heap: list[tuple[datetime, int, Callback]] = []
        self._order = itertools.count()  # callbacks due at the same moment run in the order given
        self._changed = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def at(self, moment: datetime, callback: Callback) -> None:
        """Run ``callback`` at ``moment`` by the worker's clock, in the alarm's thread (in the caller's, at
        once, if it has passed)."""
        if moment <= self.clock.now():
            _call(callback)
            return
        with self._changed:
            heapq.heappush(self._heap, (moment, next(self._order), callback))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self._thread.start()
            self._changed.notify()

    @property
    def waiting(self) -> int:
        return len(self._heap)

    def _loop(self) -> None:
        while True:
            with self._changed:
                while True:
                    if not self._heap:
                        if self._stopping:
                            self._thread = None
                            return
                        self._changed.wait()
                        continue
                    left = (self._heap[0][0] - self.clock.now()).total_seconds()
                    if left <= 0:
                        _, _, callback = heapq.heappop(self._heap)
                        break
                    self._changed.wait(left)
            _call(callback)

    def stop(self) -> None:
        """Run what waits, each at its moment, and end the thread (a later :meth:`at` starts another)."""
        with self._changed:
            self._stopping = True
            thread = self._thread
            self._changed.notify()
        if thread is not None:
            thread.join()
        with self._changed:
            self._stopping = False


def _call(callback: Callback) -> None:
    try:
        callback()
    except Exception:
        log.exception("a callback of the alarm clock failed")
