"""A daemon thread that does a round of work when woken and at least every ``interval`` seconds.

The replica heartbeat and the backfill starter are such threads: a round that raises is logged once as an
outage (:class:`retry.Outage`: down, still down, back) and the next round is tried at the next wake.
"""

from __future__ import annotations

import threading

from f8a_jobs_worker import retry
from f8a_jobs_worker.errors import Unavailable
from f8a_jobs_worker.persistence.database import short_reason


class Rounds:
    def __init__(self, name: str, interval: float, outage: retry.Outage) -> None:
        self.name = name
        self.interval = interval
        self._outage = outage
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def round(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Do a round now (something it looks at changed)."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

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
