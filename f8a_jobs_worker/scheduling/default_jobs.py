"""Default jobs: one YAML file per job in ``default_jobs/``, applied at every start.

A file holds ``job_id``, ``handler``, ``kwargs`` and the scheduling fields of ``job.create``. Applying is
idempotent: a new job is added; an unchanged one is left alone (its next run time too); a changed one is updated
in place. The job's state follows the file only when the file's ``state`` changed, so an operator's pause or
resume survives restarts. A bad file is reported by name and the other files still load.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml

from f8a_jobs_worker.access.principal import WORKER
from f8a_jobs_worker.errors import JobsError
from f8a_jobs_worker.events import Event
from f8a_jobs_worker.events import model as events
from f8a_jobs_worker.flows.backend import FlowBackend
from f8a_jobs_worker.handlers import HandlerRegistry
from f8a_jobs_worker.job import BrokenJob, Job
from f8a_jobs_worker.persistence.database import advisory_xact_lock
from f8a_jobs_worker.persistence.unit_of_work import UnitOfWork
from f8a_jobs_worker.scheduling.facade import JobService
from f8a_jobs_worker.scheduling.job_writes import JobWrites
from f8a_jobs_worker.scheduling.spec import OPTION_FIELDS, JobSpec, parse_options
from f8a_jobs_worker.scheduling.view import job_view

log = logging.getLogger(__name__)

FIELDS = (
    *OPTION_FIELDS,
    "job_id",
    "handler",
    "kwargs",
    "periodically",
    "cron",
    "calendar_interval",
    "jitter",
    "when",
    "timezone",
    "misfire_grace_time",
    "state",
)
TRIGGER_FIELDS = ("periodically", "cron", "calendar_interval", "jitter", "when", "timezone")


@dataclass(frozen=True)
class Definition:
    """One file's job: its checked spec and the declared fields as written (JSON-able, for comparison)."""

    path: Path
    spec: JobSpec
    declared: dict[str, Any]


@dataclass
class Report:
    """What loading and applying the directory did, file by file."""

    definitions: list[Definition] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.updated)} updated, {len(self.unchanged)} unchanged, "
            f"{len(self.errors)} failed"
        )


def _plain(value: Any) -> Any:
    """YAML turns ``2026-12-01 14:56`` into a datetime; keep declarations JSON-able and comparable."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def read_definition(
    path: Path,
    registry: HandlerRegistry,
    default_grace_time: int | None,
    now: datetime,
    flows: FlowBackend | None = None,
) -> Definition:
    """Parse and check one file (``now``: when a job without ``when`` first runs); raise ValueError or
    JobsError with a message that names the problem."""
    with path.open(encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
    if not isinstance(raw, dict):
        raise ValueError("expected a mapping of job fields")
    unknown = sorted(set(map(str, raw)) - set(FIELDS))
    if unknown:
        raise ValueError(
            f"unknown field(s) {', '.join(unknown)} (handler arguments go under kwargs:)"
        )
    for required in ("job_id", "handler"):
        if not isinstance(raw.get(required), str) or not raw[required]:
            raise ValueError(f"{required} is required and must be a string")
    declared = {name: _plain(raw.get(name)) for name in FIELDS if name in raw}
    declared.setdefault("kwargs", {})
    if not isinstance(declared["kwargs"], dict):
        raise ValueError("kwargs must be a mapping")
    parse_options(declared)
    fields = {k: v for k, v in declared.items() if k not in OPTION_FIELDS}
    spec = JobSpec.parse(registry, default_grace_time, flows=flows, now=now, **fields)
    return Definition(path, spec, declared)


def load_definitions(
    directory: Path,
    registry: HandlerRegistry,
    default_grace_time: int | None,
    now: datetime,
    flows: FlowBackend | None = None,
) -> Report:
    """Read every ``*.yaml``/``*.yml`` file; problems are collected per file, never raised."""
    report = Report()
    if not directory.is_dir():
        report.errors[str(directory)] = "default jobs directory does not exist"
        return report
    owners: dict[str, Path] = {}
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        try:
            definition = read_definition(path, registry, default_grace_time, now, flows)
        except (OSError, ValueError, yaml.YAMLError, JobsError) as exc:
            report.errors[path.name] = str(exc)
            continue
        job_id = definition.spec.job_id
        if job_id in owners:
            report.errors[path.name] = (
                f"job_id {job_id!r} is already defined in {owners[job_id].name}"
            )
            continue
        owners[job_id] = path
        report.definitions.append(definition)
    return report


DEFAULT_JOBS_LOCK = 0x0F8A_0DF


def apply_default_jobs(service: JobService, directory: Path) -> Report:
    """Load the directory and bring the job store in line with it; log what happened."""
    writes = service.writes
    now = service.transactions.clock.now()
    report = load_definitions(
        directory, writes.registry, writes.default_grace_time, now, writes.flows
    )
    for definition in report.definitions:
        try:
            with service.unit_of_work() as uow:  # one per file: a bad one does not undo the others
                # replicas starting together apply the same files: one at a time, each sees the others' work
                advisory_xact_lock(uow.connection, DEFAULT_JOBS_LOCK)
                uow.actor = WORKER
                _apply(writes, uow, definition, report)
        except (ValueError, JobsError) as exc:
            report.errors[definition.path.name] = str(exc)
    for name, error in sorted(report.errors.items()):
        log.error("default job file %s not loaded: %s", name, error)
    log.info("default jobs from %s: %s", directory, report.summary())
    return report


def _apply(writes: JobWrites, uow: UnitOfWork, definition: Definition, report: Report) -> None:
    spec, declared = definition.spec, definition.declared
    meta = {
        "default": True,
        "created_by": WORKER.to_dict(),
        **spec.schedule.meta(),
        "declared": declared,
        **parse_options(declared).meta(),
    }
    job = writes.jobs.find(uow, spec.job_id)
    if job is not None and not job.default:
        raise ValueError(f"job {spec.job_id!r} exists as a user job; it is not overwritten")
    if isinstance(job, BrokenJob):
        replaced = writes.store(uow, writes.new_job(spec, meta, uow.now()), replace=True)
        log.warning(
            "default job %s could not be restored (%s); replaced from %s",
            spec.job_id,
            job.reason,
            definition.path.name,
        )
        uow.emit(Event(events.JOB_UPDATED, spec.job_id, {"job": job_view(replaced)}))
        report.updated.append(spec.job_id)
        return
    if job is None:
        added = writes.store(uow, writes.new_job(spec, meta, uow.now()))
        uow.emit(Event(events.JOB_CREATED, spec.job_id, {"job": job_view(added)}))
        report.added.append(spec.job_id)
        return
    before = job.meta.get("declared", {})
    if before == declared:
        report.unchanged.append(spec.job_id)
        return
    updated = _updated(job, spec, meta, before, declared, uow.now())
    writes.jobs.save(uow, [updated])
    writes.wake_after(uow, updated.next_run_time)
    uow.emit(Event(events.JOB_UPDATED, spec.job_id, {"job": job_view(updated)}))
    log.info(
        "default job %s updated from %s (%s)",
        spec.job_id,
        definition.path.name,
        ", ".join(k for k in declared if before.get(k) != declared.get(k)) or "fields removed",
    )
    report.updated.append(spec.job_id)


def _updated(
    job: Job,
    spec: JobSpec,
    meta: dict[str, Any],
    before: dict[str, Any],
    declared: dict[str, Any],
    now: datetime,
) -> Job:
    """The stored job changed as its file now says. Its next run time is computed again only if its
    schedule changed; it is paused or resumed only if the file's ``state`` changed (an operator's pause
    survives restarts)."""
    trigger_changed = any(before.get(f) != declared.get(f) for f in TRIGGER_FIELDS)
    state_changed = before.get("state", "running") != declared.get("state", "running")
    updated = replace(
        job,
        handler=spec.handler,
        kwargs=spec.kwargs,
        meta={**{k: v for k, v in job.meta.items() if k.startswith("state_changed_")}, **meta},
        misfire_grace_time=spec.misfire_grace_time,
        trigger=spec.schedule.trigger if trigger_changed else job.trigger,
    )
    if not (trigger_changed or state_changed):
        return updated
    paused = spec.paused if state_changed else job.next_run_time is None
    if paused:
        return updated.moved(None)
    if not trigger_changed and job.next_run_time:
        return updated
    return updated.moved(updated.following(None, now))
