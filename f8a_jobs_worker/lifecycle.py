"""The worker's parts in one lifecycle: started in a given order, stopped in the reverse one.

:class:`Lifecycle` keeps the list (an :class:`~contextlib.ExitStack` of each started part's stop), so a start
that fails half way stops what it started, and a stop undoes exactly what ran. :class:`Daemon` is a named
daemon thread that runs ``_run`` until :meth:`Daemon.stop`; :class:`Rounds` does a round of work when its
:class:`Doorbell` rings and at least every ``interval`` seconds, a round that raises logged once as an outage
(down, still down, back) and tried again at the next ring. docs/architecture.md has the table of the threads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from f8a_jobs_worker import retry

log = logging.getLogger(__name__)


class Doorbell:
    """A wake-up between who rings it (work committed for a thread) and the thread that waits on it."""

    def __init__(self) -> None:
        self._rung = threading.Event()

    def ring(self) -> None:
        self._rung.set()

    def wait(self, timeout: float | None) -> bool:
        """Wait until rung (True) or ``timeout`` seconds (False); either way it is quiet again."""
        rung = self._rung.wait(timeout)
        self._rung.clear()
        return rung


class Daemon:
    def __init__(self, name: str, bell: Doorbell | None = None, stop_timeout: float = 10.0) -> None:
        self.thread_name = name
        self.bell = bell or Doorbell()
        self.stop_timeout = stop_timeout
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look now (something the thread waits for happened)."""
        self.bell.ring()

    def stop(self, timeout: float | None = None) -> None:
        self._stopping.set()
        self.bell.ring()
        if self._thread is not None:
            self._thread.join(self.stop_timeout if timeout is None else timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


class Rounds(Daemon):
    def __init__(
        self, name: str, interval: float, outage: retry.Outage, bell: Doorbell | None = None
    ) -> None:
        super().__init__(name, bell)
        self.interval = interval
        self._outage = outage

    def round(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stopping.is_set():
            self.bell.wait(self.interval)
            if self._stopping.is_set():
                return
            try:
                self.round()
                self._outage.recovered()
            except Exception as exc:
                self._outage.failed(retry.reason(exc))


class Lifecycle:
    """Parts started in order, stopped in reverse: ``with Lifecycle() as parts: parts.start(...)``."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        #: the names of the parts started, in order
        self.started: list[str] = []

    def start(self, name: str, start: Callable[[], Any], stop: Callable[[], Any] | None) -> None:
        """Start a part now; ``stop`` (if any) runs when the lifecycle closes, before the parts started
        earlier stop."""
        log.debug("starting %s", name)
        start()
        self.started.append(name)
        if stop is not None:
            self._stack.callback(self._stop, name, stop)

    @staticmethod
    def _stop(name: str, stop: Callable[[], Any]) -> None:
        log.debug("stopping %s", name)
        try:
            stop()
        except Exception:  # the parts started before it still stop
            log.exception("stopping %s failed", name)

    def close(self) -> None:
        """Stop every part started, the last first."""
        self._stack.close()
        self.started.clear()
