"""The handlers' thread pool: every call made, in order on one thread, a failing call logged and the next one
made, the calls queued before a shutdown made, none taken after it."""

from __future__ import annotations

import logging
import threading

import pytest

from f8a_jobs_worker.scheduling.pool import ThreadPool


def test_queued_calls_are_made_before_shutdown_returns_and_none_after() -> None:
    pool = ThreadPool(1, "test-pool")
    gate = threading.Event()
    made: list[int] = []
    pool.submit(gate.wait)
    for n in range(5):
        pool.submit(lambda n=n: made.append(n))
    gate.set()
    pool.shutdown(wait=True)
    assert made == [0, 1, 2, 3, 4]
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(lambda: made.append(99))
    assert made == [0, 1, 2, 3, 4]


def test_a_failing_call_is_logged_and_its_thread_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    pool = ThreadPool(1, "test-pool")
    names: list[str] = []

    def fail() -> None:
        raise ValueError("boom")

    with caplog.at_level(logging.ERROR):
        pool.submit(fail)
        pool.submit(lambda: names.append(threading.current_thread().name))
        pool.shutdown(wait=True)
    assert names == ["test-pool_0"]
    failed = [r for r in caplog.records if r.exc_info]
    assert len(failed) == 1 and "boom" in str(failed[0].exc_info[1])


def test_calls_run_on_as_many_threads_as_asked() -> None:
    pool = ThreadPool(3, "test-pool")
    together = threading.Barrier(3, timeout=30)
    names: set[str] = set()
    lock = threading.Lock()

    def meet() -> None:
        together.wait()  # breaks (and fails the test) unless three calls run at once
        with lock:
            names.add(threading.current_thread().name)

    for _ in range(3):
        pool.submit(meet)
    pool.shutdown(wait=True)
    assert names == {"test-pool_0", "test-pool_1", "test-pool_2"}
