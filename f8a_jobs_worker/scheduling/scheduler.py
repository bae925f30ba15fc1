"""The scheduler thread of a replica: a pass when a run falls due (its claim window ahead), when woken, and at
least every poll interval, so a change made through another replica is seen even if its notification is lost.

Paused (``scheduler.pause``, held in the store for every replica), it makes no pass until resumed. A pass that
fails (the store is down) is retried about once a second, after a probe, and logged as an outage: once when
it begins, every 30 s while it lasts, once when it ends. Stopping waits for a pass in progress, whose runs the
executor (stopped after this thread) still starts, and makes no pass after it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from f8a_jobs_worker import retry
from f8a_jobs_worker.clock import Clock
from f8a_jobs_worker.errors import Unavailable
from f8a_jobs_worker.job import Job
from f8a_jobs_worker.persistence.unit_of_work import UnitOfWork
from f8a_jobs_worker.scheduling.firing import Firing, Passed

log = logging.getLogger(__name__)

#: the wait before the next pass when every due row was held by other replicas' passes (no spinning)
HELD_ROWS_WAIT = 0.05


class State(Enum):
    STOPPED = "stopped"
    PAUSED = "paused"
    RUNNING = "running"


class Scheduler:
    def __init__(
        self,
        firing: Firing,
        clock: Clock,
        poll_interval: float,
        probe: Callable[[], Any],
    ) -> None:
        """``probe`` raises :class:`Unavailable` unless the store answers (tried before a pass while it
        was down)."""
        self.firing = firing
        self.clock = clock
        self.poll_interval = poll_interval
        self.probe = probe
        self.state = State.STOPPED
        #: passes so far (the thread is idle between passes unless jobs are due)
        self.passes = 0
        #: when the next pass is planned (None: a pass is in progress, or none before a wake-up)
        self.planned: datetime | None = None
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._outage = retry.Outage("job store", log)

    @property
    def fire_ahead(self) -> float:
        return self.firing.fire_ahead

    # -- lifecycle -----------------------------------------------------------------------------------------

    def start(self, paused: bool) -> None:
        self.state = State.PAUSED if paused else State.RUNNING
        self._thread = threading.Thread(target=self._loop, name="f8a-scheduler", daemon=True)
        self._thread.start()
        log.info("scheduler started (%s)", self.state.value)

    def stop(self) -> None:
        """No pass after this returns (a pass in progress completes first)."""
        self.state = State.STOPPED
        self._wake.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def alive(self) -> bool:
        """The thread is there to fire jobs (running or paused, not stopped)."""
        thread = self._thread
        return self.state != State.STOPPED and thread is not None and thread.is_alive()

    @property
    def running(self) -> bool:
        return self.state == State.RUNNING

    # -- what others tell it -------------------------------------------------------------------------------

    def pause(self) -> None:
        if self.state == State.RUNNING:
            self.state = State.PAUSED

    def resume(self) -> None:
        if self.state == State.PAUSED:
            self.state = State.RUNNING
            self.wake()

    def follow(self, paused: bool) -> None:
        """Apply the stored pause or resume, made through any replica, to this scheduler."""
        if paused and self.state == State.RUNNING:
            self.pause()
            log.warning("scheduler paused (by an operator, through another replica)")
        elif not paused and self.state == State.PAUSED:
            self.resume()
            log.info("scheduler resumed (by an operator, through another replica)")

    def fire_created(self, uow: UnitOfWork, new: list[Job]) -> list[Job]:
        """New jobs as they are to be stored, with the first runs due now entered and started with ``uow``
        while this scheduler runs (:meth:`Firing.fire_created`)."""
        return self.firing.fire_created(uow, new) if self.running else new

    def wake(self) -> None:
        """Pass now (jobs may be due sooner than planned, or rows were changed behind its back)."""
        self.planned = None
        self._wake.set()

    def wake_for(self, moment: datetime) -> None:
        """A job is due at ``moment`` (committed): pass now unless a pass is planned by then anyway. While a
        pass is in progress nothing is planned, so the one that follows it sees the job."""
        planned = self.planned
        ahead = timedelta(seconds=self.fire_ahead)
        if self.state == State.RUNNING and (planned is None or moment - ahead < planned):
            self.wake()

    # -- the loop ------------------------------------------------------------------------------------------

    def _loop(self) -> None:
        wait: float | None = 0.0
        while True:
            self._wake.wait(wait)
            self._wake.clear()
            if self.state == State.STOPPED:
                return
            wait = self._pass() if self.state == State.RUNNING else None

    def _pass(self) -> float | None:
        """One pass; the seconds until the next (None: not before a wake-up)."""
        self.planned = None  # until this pass has planned the next one
        self.passes += 1
        try:
            if self._outage.down:  # a probe first, rather than a failed pass logged per attempt
                self.probe()
            passed = self.firing.run()
        except Exception as exc:
            self._outage.failed(exc.message if isinstance(exc, Unavailable) else retry.reason(exc))
            return retry.MAX_DELAY
        self._outage.recovered()
        if passed.paused:
            self.follow(paused=True)  # paused through another replica
            return None
        wait = self._wait_after(passed)
        self.planned = self.clock.now() + timedelta(seconds=wait)
        return wait

    def _wait_after(self, passed: Passed) -> float:
        if passed.next_run_time is None:
            return self.poll_interval
        due = passed.next_run_time - timedelta(seconds=self.fire_ahead) - self.clock.now()
        seconds = due.total_seconds()
        if seconds <= 0 and passed.claimed == 0:
            return HELD_ROWS_WAIT  # due rows held by other replicas' passes: look again shortly
        return min(max(seconds, 0.0), self.poll_interval)
