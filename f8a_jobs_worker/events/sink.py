"""Who else sees the events the outbox relay has sent: :class:`EventSink`, the observers' port (the log
without a broker, an in-memory list in tests)."""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from f8a_jobs_worker.events.model import Event

log = logging.getLogger(__name__)


class EventSink(Protocol):
    """Takes events for delivery. ``emit`` must not block for long; it may raise, callers guard it."""

    def emit(self, event: Event) -> None: ...

    def emit_many(self, events: list[Event]) -> None:
        """Several events at once (a batch of commands'), in order; a sink may deliver them together."""
        ...


class LoggingEventSink:
    """Writes each event as one log line; the sink of a worker with no broker."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.log = logger or logging.getLogger("f8a_jobs_worker.events")

    def emit(self, event: Event) -> None:
        fields = " ".join(f"{k}={v!r}" for k, v in event.fields.items() if k != "traceback")
        self.log.info("event %s job_id=%s %s", event.name, event.job_id, fields)

    def emit_many(self, events: list[Event]) -> None:
        for event in events:
            self.emit(event)


class MemoryEventSink:
    """Keeps events in a list: the stub adapter for unit tests and in-process observers."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = threading.Condition()

    def emit(self, event: Event) -> None:
        self.emit_many([event])

    def emit_many(self, events: list[Event]) -> None:
        with self._changed:
            self.events.extend(events)
            self._changed.notify_all()

    def names(self, job_id: str | None = None) -> list[str]:
        return [e.name for e in list(self.events) if job_id is None or e.job_id == job_id]

    def wait_for(
        self, name: str, job_id: str | None = None, timeout: float = 10.0, count: int = 1
    ) -> list[Event]:
        """Block until ``count`` events named ``name`` (for ``job_id``) arrived; return them."""

        def matching() -> list[Event]:
            return [
                e for e in self.events if e.name == name and (job_id is None or e.job_id == job_id)
            ]

        with self._changed:
            self._changed.wait_for(lambda: len(matching()) >= count, timeout)
            found = matching()
        if len(found) < count:
            raise TimeoutError(
                f"{len(found)} of {count} {name} events for {job_id} after {timeout}s"
            )
        return found


class SafeEventSink:
    """Fans out to several sinks; a failing sink is logged and never breaks the caller."""

    def __init__(self, *sinks: EventSink) -> None:
        self.sinks = list(sinks)

    def emit(self, event: Event) -> None:
        self.emit_many([event])

    def emit_many(self, events: list[Event]) -> None:
        if not events:
            return
        for sink in self.sinks:
            try:
                sink.emit_many(events)
            except Exception:
                log.exception(
                    "%d events (%s for job %s first) could not be emitted",
                    len(events),
                    events[0].name,
                    events[0].job_id,
                )
