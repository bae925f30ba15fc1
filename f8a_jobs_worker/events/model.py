"""The event record of the wire contract: ``{"event": name, "event_id": ..., "at": UTC ISO, "job_id": ...}``."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from f8a_jobs_worker.ids import random_id

JOB_CREATED = "job.created"
JOB_UPDATED = "job.updated"
JOB_PAUSED = "job.paused"
JOB_RESUMED = "job.resumed"
JOB_DELETED = "job.deleted"
JOB_EXECUTED = "job.executed"
JOB_FAILED = "job.failed"
JOB_MISSED = "job.missed"
JOB_BROKEN = "job.broken"
JOB_INTERRUPTED = "job.interrupted"
COMMAND_REJECTED = "command.rejected"
SCHEDULER_PAUSED = "scheduler.paused"
SCHEDULER_RESUMED = "scheduler.resumed"


@dataclass(frozen=True)
class Event:
    """One event; ``name`` is also its routing key."""

    name: str
    job_id: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    #: when it happened; None until the unit of work that writes it stamps it with its clock
    at: datetime | None = None
    #: the same for every copy of the event a monitor may receive (the outbox may send one twice)
    event_id: str = field(default_factory=random_id)

    def stamped(self, now: datetime) -> Event:
        """The event with ``at`` set (``now`` unless it has a time already)."""
        return self if self.at is not None else replace(self, at=now)

    def to_dict(self) -> dict[str, Any]:
        if self.at is None:
            raise ValueError(f"event {self.name} has no time: stamp it first")
        body: dict[str, Any] = {
            "event": self.name,
            "event_id": self.event_id,
            "at": self.at.isoformat(),
        }
        if self.job_id is not None:
            body["job_id"] = self.job_id
        body.update(self.fields)
        return body
