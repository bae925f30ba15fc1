"""Waiting for a dependency that is down: the one retry policy of the worker (tenacity).

Every wait for the job store or the broker (at start, in the command consumer, in the scheduler loop) probes
at most :data:`MAX_DELAY` apart, so work resumes within about a second of the dependency coming back, however
long it was down. Logs say it once when it goes down, every :data:`REMIND_EVERY` seconds while it stays down,
and once when it is back, instead of a line per attempt.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import tenacity

T = TypeVar("T")

FIRST_DELAY = 0.1
MAX_DELAY = 1.0
REMIND_EVERY = 30.0


def delays() -> tenacity.wait.wait_base:
    """0.1 s, doubling, at most :data:`MAX_DELAY`: quick for a blip, prompt after a long outage."""
    return tenacity.wait_exponential(multiplier=FIRST_DELAY, min=FIRST_DELAY, max=MAX_DELAY)


class Outage:
    """Log lines for one dependency: down (once), still down (every REMIND_EVERY s), back (once)."""

    def __init__(self, what: str, logger: logging.Logger) -> None:
        self.what = what
        self.log = logger
        self.since: float | None = None
        self._reminded = 0.0

    def failed(self, reason: str) -> None:
        now = time.monotonic()
        if self.since is None:
            self.since = self._reminded = now
            self.log.warning(
                "%s unavailable (%s); retrying every %.0fs", self.what, reason, MAX_DELAY
            )
        elif now - self._reminded >= REMIND_EVERY:
            self._reminded = now
            self.log.warning(
                "%s still unavailable after %.0fs (%s)", self.what, now - self.since, reason
            )
        else:
            self.log.debug("%s unavailable (%s)", self.what, reason)

    def recovered(self) -> None:
        if self.since is not None:
            self.log.info("%s back after %.1fs", self.what, time.monotonic() - self.since)
            self.since = None

    @property
    def down(self) -> bool:
        return self.since is not None


def until_available(
    attempt: Callable[[], T],
    retry_on: type[BaseException] | tuple[type[BaseException], ...],
    outage: Outage,
    stop: threading.Event,
    sleep: Callable[[float], None] | None = None,
) -> T | None:
    """Call ``attempt`` until it stops raising ``retry_on`` (then its result) or ``stop`` is set (then
    None). ``sleep`` waits between attempts (default: on ``stop``, so a stop request ends the wait)."""

    def note(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        outage.failed(reason(error))

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(retry_on),
        wait=delays(),
        stop=tenacity.stop_when_event_set(stop),
        sleep=sleep or stop.wait,  # type: ignore[arg-type]
        before_sleep=note,
        retry_error_callback=lambda _state: None,
    )
    result: T | None = retrying(attempt)
    if not stop.is_set():
        outage.recovered()
    return result


def reason(error: BaseException | None) -> str:
    """What failed, in one line for a log: the worker's message of its own errors; the driver's first line
    of a database error (SQLAlchemy's text would add the statement and its parameters); else the text."""
    if error is None:
        return "unknown"
    message = getattr(error, "message", None)
    if not message and hasattr(error, "orig"):
        message = str(error.orig or type(error).__name__)
    lines = str(message or error or type(error).__name__).strip().splitlines()
    return (lines[0] if lines else type(error).__name__)[:200]
