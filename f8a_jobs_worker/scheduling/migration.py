"""Default job files of the original service rewritten into this service's form (docs/migration.md).

The original's files name handlers by class (``FlowScheduling``), may put the handler's kwargs at the top level
of the file (``f8a_jobs/default_jobs``) or under ``kwargs:`` (``bayesian_jobs``), and leave ``when:`` empty.
Each rewrite says what it changed, what it could not, and which behaviour will differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from f8a_jobs_worker.scheduling.default_jobs import FIELDS

#: the original's handler classes and this service's names for them
HANDLERS = {
    "FlowScheduling": "flow_scheduling",
    "SelectiveFlowScheduling": "selective_flow_scheduling",
}
#: the original's fields that keep their name and meaning here
KEPT = ("job_id", "handler", "kwargs", "when", "periodically", "misfire_grace_time", "state")


@dataclass
class Migrated:
    """One file's rewrite."""

    source: Path
    job: dict[str, Any]
    changes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what this service cannot run as written
    notes: list[str] = field(default_factory=list)  # behaviour that differs from the original's


def migrate(raw: Any, source: Path, known_handlers: set[str]) -> Migrated:
    """The job of one original file in this service's form."""
    if not isinstance(raw, dict):
        raise ValueError("expected a mapping of job fields")
    job: dict[str, Any] = {}
    result = Migrated(source, job)
    moved = [key for key in raw if str(key) not in KEPT]
    handler = raw.get("handler")
    if isinstance(handler, str) and handler in HANDLERS:
        job["handler"] = HANDLERS[handler]
        result.changes.append(f"handler {handler} -> {HANDLERS[handler]}")
    else:
        job["handler"] = handler
        if handler not in known_handlers:
            result.problems.append(f"handler {handler!r} does not exist here (kept as written)")
    job["job_id"] = raw.get("job_id")
    kwargs = dict(raw.get("kwargs") or {})
    for key in moved:
        kwargs[str(key)] = raw[key]
    if moved:
        result.changes.append(f"{', '.join(map(str, moved))} moved under kwargs")
    if kwargs or "kwargs" in raw:
        job["kwargs"] = kwargs
    if raw.get("when") is None:
        if "when" in raw:
            result.changes.append("empty when dropped")
    else:
        job["when"] = raw["when"]
    if raw.get("periodically") is not None:
        job["periodically"] = raw["periodically"]
        if raw.get("when") is None:
            result.notes.append(
                "first run at start (the original first ran one interval after the job was added)"
            )
    if "misfire_grace_time" in raw:
        job["misfire_grace_time"] = raw["misfire_grace_time"]
    else:
        job["misfire_grace_time"] = None
        result.changes.append(
            "misfire_grace_time: null added (the original ran however late; the default here is 1 hour)"
        )
    if raw.get("state") is not None:
        job["state"] = raw["state"]
    unknown_here = sorted(set(job) - set(FIELDS))
    if unknown_here:  # pragma: no cover - KEPT is a subset of FIELDS
        result.problems.append(f"fields {unknown_here} are not known here")
    return result


def migrate_directory(
    source: Path, target: Path, known_handlers: set[str]
) -> tuple[list[Migrated], dict[str, str]]:
    """Rewrite every ``*.yaml``/``*.yml`` of ``source`` into ``target`` (created); return the rewrites and
    the files that could not be read (name -> why)."""
    target.mkdir(parents=True, exist_ok=True)
    done: list[Migrated] = []
    unreadable: dict[str, str] = {}
    owners: dict[Any, str] = {}
    for path in sorted([*source.glob("*.yaml"), *source.glob("*.yml")]):
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
            migrated = migrate(raw, path, known_handlers)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            unreadable[path.name] = str(exc)
            continue
        job_id = migrated.job["job_id"]
        if job_id in owners:  # the original let the file read last win, silently
            migrated.problems.append(
                f"job_id {job_id!r} is also the job of {owners[job_id]}: keep one of the two files"
            )
        owners.setdefault(job_id, path.name)
        header = f"# migrated from the original service's {path.name} by f8a-jobs-worker migrate-default-jobs\n"
        text = yaml.safe_dump(migrated.job, sort_keys=False, allow_unicode=True, width=100)
        (target / path.name).write_text(header + text, encoding="utf-8")
        done.append(migrated)
    return done, unreadable
