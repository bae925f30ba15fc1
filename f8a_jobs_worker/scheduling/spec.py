"""A job as asked for: the ``job.create`` arguments, checked and turned into what APScheduler stores."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from f8a_jobs_worker.errors import ValidationFailed
from f8a_jobs_worker.handlers import HandlerRegistry
from f8a_jobs_worker.scheduling.schedule import DEFAULT, Schedule, build_schedule, parse_grace_time

STATES = ("running", "paused")
MAX_JOB_ID = 191
MAX_PAUSE_AFTER_FAILURES = 1000


def parse_pause_after_failures(value: Any) -> int | None:
    """``pause_after_failures``: null (never pause) or 1 to 1000 consecutive failed runs."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 1 <= value <= MAX_PAUSE_AFTER_FAILURES
    ):
        raise ValidationFailed(
            f"pause_after_failures must be null or 1 to {MAX_PAUSE_AFTER_FAILURES}, got {value!r}",
            [{"path": "$.pause_after_failures", "message": "expected null or 1-1000"}],
        )
    return value


@dataclass(frozen=True)
class JobSpec:
    """Everything needed to add or update a job; built only through :meth:`parse`."""

    job_id: str
    handler: str
    kwargs: dict[str, Any]
    schedule: Schedule
    misfire_grace_time: int | None
    paused: bool

    @classmethod
    def parse(
        cls,
        registry: HandlerRegistry,
        default_grace_time: int | None,
        *,
        handler: str,
        kwargs: dict[str, Any] | None = None,
        job_id: str | None = None,
        periodically: Any = None,
        cron: Any = None,
        jitter: Any = None,
        when: Any = None,
        misfire_grace_time: Any = DEFAULT,
        state: str | None = None,
        now: datetime | None = None,
    ) -> JobSpec:
        """Check the arguments: unknown_handler, validation_error or invalid_schedule on bad input."""
        kwargs = {} if kwargs is None else kwargs
        registry.validate_kwargs(handler, kwargs)
        state = state or "running"
        if state not in STATES:
            raise ValidationFailed(
                f"state must be one of {', '.join(STATES)}, got {state!r}",
                [{"path": "$.state", "message": f"{state!r} is not one of {list(STATES)}"}],
            )
        if job_id is not None and (
            not isinstance(job_id, str) or not 0 < len(job_id) <= MAX_JOB_ID
        ):
            raise ValidationFailed(
                f"job_id must be a string of 1 to {MAX_JOB_ID} characters",
                [{"path": "$.job_id", "message": "expected a string of 1 to 191 characters"}],
            )
        schedule = build_schedule(
            periodically=periodically, cron=cron, jitter=jitter, when=when, now=now
        )
        return cls(
            job_id=job_id or str(uuid.uuid4()),
            handler=handler,
            kwargs=kwargs,
            schedule=schedule,
            misfire_grace_time=parse_grace_time(misfire_grace_time, default_grace_time),
            paused=state == "paused",
        )
