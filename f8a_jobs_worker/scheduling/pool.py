"""The threads that run handlers: calls taken off one queue, in the order given, by a fixed number of threads.

``concurrent.futures.ThreadPoolExecutor`` builds a ``Future`` for every call, with a ``threading.Condition``
of its own, and calls its callbacks through it; the executor needs neither (what follows a run is called by
the thread that ran it), and at a run per running create that was a few percent of the worker's CPU.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

Call = Callable[[], object]

#: what tells a thread of the pool to end, once the calls queued before it were made
_END = None


class ThreadPool:
    def __init__(self, threads: int, name: str) -> None:
        """``threads`` started at once; idle, each waits on the queue."""
        self._calls: queue.SimpleQueue[Call | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._shut = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}_{n}", daemon=True)
            for n in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, call: Call) -> None:
        """Make ``call`` on a thread of the pool, after the calls submitted before it were taken. An
        exception it raises is logged: the caller wraps what must not fail silently."""
        with self._lock:
            if self._shut:
                raise RuntimeError("the pool was shut down: no new calls")
            self._calls.put(call)

    def shutdown(self, wait: bool = True) -> None:
        """No new calls; the calls queued are still made. ``wait``: return once they were."""
        with self._lock:
            if not self._shut:
                self._shut = True
                for _ in self._threads:
                    self._calls.put(_END)
        if wait:
            for thread in self._threads:
                thread.join()

    def _work(self) -> None:
        while (call := self._calls.get()) is not _END:
            try:
                call()
            except Exception:
                log.exception("a call on the pool failed")
            del call  # what it holds is not kept alive while this thread waits
