"""The one retry policy: probes at most a second apart however long the outage, one log line down and one
back, and a stop request ends the wait."""

from __future__ import annotations

import logging
import threading

import pytest
import tenacity

from f8a_jobs_worker import retry
from f8a_jobs_worker.errors import Unavailable


def test_delays_double_from_a_tenth_and_never_exceed_a_second() -> None:
    wait = retry.delays()
    delays = []
    for attempt in range(1, 40):
        state = tenacity.RetryCallState(None, None, (), {})
        state.attempt_number = attempt
        delays.append(wait(state))
    assert delays[:4] == [0.1, 0.2, 0.4, 0.8]
    assert max(delays) == retry.MAX_DELAY == 1.0


def test_until_available_retries_logs_once_each_way_and_returns_the_result(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    attempts = iter([Unavailable("store down"), Unavailable("store down"), "ok"])

    def attempt() -> str:
        outcome = next(attempts)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    slept: list[float] = []
    outage = retry.Outage("job store", logging.getLogger("test"))
    result = retry.until_available(attempt, Unavailable, outage, threading.Event(), slept.append)
    assert result == "ok" and slept == [0.1, 0.2]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["job store unavailable (store down); retrying every 1s"]
    back = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(back) == 1 and back[0].startswith("job store back after")


def test_a_stop_request_ends_the_wait() -> None:
    stop = threading.Event()

    def attempt() -> None:
        stop.set()
        raise Unavailable("down")

    outage = retry.Outage("broker", logging.getLogger("test"))
    assert retry.until_available(attempt, Unavailable, outage, stop) is None


def test_other_errors_are_not_retried() -> None:
    def attempt() -> None:
        raise ValueError("a bug")

    outage = retry.Outage("broker", logging.getLogger("test"))
    with pytest.raises(ValueError, match="a bug"):
        retry.until_available(attempt, Unavailable, outage, threading.Event())
