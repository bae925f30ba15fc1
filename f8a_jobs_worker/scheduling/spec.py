"""A job as asked for: the ``job.create`` arguments (and a default job file's fields), checked."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from f8a_jobs_worker.errors import ValidationFailed
from f8a_jobs_worker.flows.backend import FlowBackend
from f8a_jobs_worker.handlers import HandlerRegistry
from f8a_jobs_worker.job import DEFAULT_OVERLAP_LIMIT, ON_INTERRUPT, OVERLAP, JobOptions
from f8a_jobs_worker.scheduling.schedule import (
    NOT_GIVEN,
    Schedule,
    build_schedule,
    parse_grace_time,
)

STATES = ("running", "paused")
MAX_JOB_ID = 191
MAX_PAUSE_AFTER_FAILURES = 1000


MAX_OVERLAP_LIMIT = 100
#: the job.create arguments (and default job fields) that are options of the job, not of its schedule
OPTION_FIELDS = ("on_interrupt", "pause_after_failures", "overlap", "overlap_limit")


def _refuse(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field} {message}", [{"path": f"$.{field}", "message": message}])


def _whole(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _bounded(value: Any, low: int, high: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and low <= value <= high


def parse_options(fields: Mapping[str, Any]) -> JobOptions:
    """The job options among ``fields`` (``job.create`` arguments, a default job file); validation_error
    naming the field for a bad one."""
    on_interrupt = fields.get("on_interrupt") or "report"
    if on_interrupt not in ON_INTERRUPT:
        raise _refuse("on_interrupt", f"must be one of {', '.join(ON_INTERRUPT)}")
    pause = _whole(fields.get("pause_after_failures"))
    if pause is not None and not _bounded(pause, 1, MAX_PAUSE_AFTER_FAILURES):
        raise _refuse("pause_after_failures", f"must be null or 1 to {MAX_PAUSE_AFTER_FAILURES}")
    overlap = fields.get("overlap") or "skip"
    if overlap not in OVERLAP:
        raise _refuse("overlap", f"must be one of {', '.join(OVERLAP)}")
    limit = _whole(fields.get("overlap_limit"))
    if limit is not None:
        if overlap != "allow":
            raise _refuse("overlap_limit", "is for overlap: allow only")
        if not _bounded(limit, 2, MAX_OVERLAP_LIMIT):
            raise _refuse("overlap_limit", f"must be 2 to {MAX_OVERLAP_LIMIT}")
    elif overlap == "allow":
        limit = DEFAULT_OVERLAP_LIMIT
    return JobOptions(on_interrupt, pause, overlap, limit)


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
        flows: FlowBackend | None = None,
        handler: str,
        kwargs: dict[str, Any] | None = None,
        job_id: str | None = None,
        periodically: Any = None,
        cron: Any = None,
        calendar_interval: Any = None,
        jitter: Any = None,
        when: Any = None,
        timezone: Any = None,
        misfire_grace_time: Any = NOT_GIVEN,
        state: str | None = None,
        now: datetime,
    ) -> JobSpec:
        """Check the arguments: unknown_handler, validation_error or invalid_schedule on bad input
        (``flows``: the flow backend a flow job's names are checked against)."""
        kwargs = {} if kwargs is None else kwargs
        registry.validate_kwargs(handler, kwargs, flows)
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
            periodically=periodically,
            cron=cron,
            calendar_interval=calendar_interval,
            jitter=jitter,
            when=when,
            timezone=timezone,
            now=now,
        )
        return cls(
            job_id=job_id or str(uuid.uuid4()),
            handler=handler,
            kwargs=kwargs,
            schedule=schedule,
            misfire_grace_time=parse_grace_time(misfire_grace_time, default_grace_time),
            paused=state == "paused",
        )
