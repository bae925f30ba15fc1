"""Messages out: the events that tell monitors what happened to jobs."""

from f8a_jobs_worker.events.model import Event
from f8a_jobs_worker.events.sink import EventSink, LoggingEventSink, MemoryEventSink, SafeEventSink

__all__ = ["Event", "EventSink", "LoggingEventSink", "MemoryEventSink", "SafeEventSink"]
