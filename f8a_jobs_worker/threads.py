"""The worker's background threads: one lifecycle for all (start, wake, stop, alive), and the loop of those that
work in rounds.

:class:`Daemon` is a named daemon thread that runs ``_run`` until :meth:`Daemon.stop`; the outbox relay, the
flow relay and the notification listener are such threads. :class:`Rounds` does a round of work when woken
and at least every ``interval`` seconds (the replica heartbeat, the backfill starter): a round that raises is
logged once as an outage (:class:`retry.Outage`: down, still down, back) and tried again at the next wake.
"""

from __future__ import annotations

import threading

from f8a_jobs_worker import retry
from f8a_jobs_worker.errors import Unavailable
from f8a_jobs_worker.persistence.database import short_reason


class Daemon:
    def __init__(self, name: str, stop_timeout: float = 10.0) -> None:
        self.thread_name = name
        self.stop_timeout = stop_timeout
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look now (something the thread waits for happened)."""
        self._wake.set()

    def stop(self, timeout: float | None = None) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(self.stop_timeout if timeout is None else timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


class Rounds(Daemon):
    def __init__(self, name: str, interval: float, outage: retry.Outage) -> None:
        super().__init__(name)
        self.interval = interval
        self._outage = outage

    def round(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                self.round()
                self._outage.recovered()
            except Exception as exc:
                self._outage.failed(
                    exc.message if isinstance(exc, Unavailable) else short_reason(exc)
                )
