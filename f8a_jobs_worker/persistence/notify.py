"""Prompt word between replicas: PostgreSQL ``LISTEN``/``NOTIFY`` on one channel.

A transaction that makes a job due sooner (create, update, resume) or changes the scheduler's state sends a
notification with :func:`notify`; PostgreSQL delivers it to every listening replica when, and only if, the
transaction commits. :class:`Listener` is each replica's thread that receives them and wakes its scheduler.
Notifications are a hint, not the record: a replica that missed some (its listening connection broke) catches
up when it reconnects, and every replica also polls (``F8A_JOBS_POLL_INTERVAL``). SQLite serves one replica,
which wakes itself: there :func:`notify` does nothing and no listener runs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from f8a_jobs_worker import retry
from f8a_jobs_worker.lifecycle import Daemon

log = logging.getLogger(__name__)

CHANNEL = "f8a_jobs"
#: a job may be due sooner than the replicas thought: compute the next wake-up again
WAKE = "wake"
#: the scheduler was paused or resumed
STATE = "state"

_NOTIFY = sa.text("SELECT pg_notify(:channel, :topic)")


def notify(connection: sa.Connection, topic: str) -> None:
    """Tell every replica ``topic`` once ``connection``'s transaction commits."""
    if connection.dialect.name == "postgresql":
        connection.execute(_NOTIFY, {"channel": CHANNEL, "topic": topic})


def listens(engine: sa.Engine) -> bool:
    return engine.dialect.name == "postgresql"


class Listener(Daemon):
    """A thread holding one connection that listens on :data:`CHANNEL` and passes each topic on."""

    def __init__(
        self,
        engine: sa.Engine,
        on_topic: Callable[[str], Any],
        on_connect: Callable[[], Any],
    ) -> None:
        super().__init__("f8a-listen", stop_timeout=5.0)
        self.engine = engine
        self.on_topic = on_topic
        #: called after every (re)connection: notifications sent meanwhile were missed
        self.on_connect = on_connect
        #: set while connected and listening (after ``on_connect`` returned)
        self.listening = threading.Event()
        self._outage = retry.Outage("notification listener", log)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._listen()
            except Exception as exc:
                self._outage.failed(retry.reason(exc))
                self._stopping.wait(retry.MAX_DELAY)

    def _listen(self) -> None:
        connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            connection.execute(sa.text(f"LISTEN {CHANNEL}"))
            driver: Any = connection.connection.driver_connection
            self._outage.recovered()
            self.on_connect()
            self.listening.set()
            while not self._stopping.is_set():
                for notification in driver.notifies(timeout=0.5):
                    self.on_topic(notification.payload)
        finally:
            self.listening.clear()
            # not back to the pool: a pooled connection still listening would collect notifications
            connection.invalidate()
            connection.close()
