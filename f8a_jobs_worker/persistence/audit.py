"""The audit trail: one row per write and per refusal, naming the principal (and whom a forwarder acted
for), the command, its job and its outcome. Read newest first by ``audit.list``; pruned by its own retention
(``F8A_JOBS_AUDIT_RETENTION_DAYS``), longer than the stored replies' and the runs'."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from f8a_jobs_worker.access.principal import Principal
from f8a_jobs_worker.errors import ValidationFailed
from f8a_jobs_worker.persistence.database import as_utc
from f8a_jobs_worker.persistence.tables import audit
from f8a_jobs_worker.persistence.unit_of_work import UnitOfWork


def audit_row(
    principal: Principal,
    command: str | None,
    command_id: str,
    args: Any,
    outcome: str,
    message: str | None,
    at: datetime,
) -> dict[str, Any]:
    """The row of one command's outcome (``args``: its arguments, where its job id is read)."""
    job_id = args.get("job_id") if isinstance(args, dict) else None
    return {
        "at": at,
        "principal": principal.name[:255],
        "source": principal.source[:16],
        "on_behalf_of": principal.on_behalf_of,
        "command": command[:64] if command else None,
        "command_id": command_id[:128],
        "job_id": job_id[:191] if isinstance(job_id, str) else None,
        "outcome": outcome[:32],
        "message": message[:1000] if message else None,
    }


class AuditLog:
    """``f8a_audit`` on the caller's unit of work."""

    @staticmethod
    def record(uow: UnitOfWork, row: dict[str, Any]) -> None:
        """Add a row with the unit of work's other audit rows (one insert per batch)."""
        uow.insert_later(audit, row)

    @staticmethod
    def page(
        uow: UnitOfWork,
        limit: int,
        job_id: str | None = None,
        principal: str | None = None,
        after: str | None = None,
    ) -> dict[str, Any]:
        """Entries newest first, of one job or principal if asked; ``next`` reads the page after."""
        query = sa.select(audit).order_by(audit.c.id.desc()).limit(limit + 1)
        if job_id is not None:
            query = query.where(audit.c.job_id == job_id)
        if principal is not None:
            query = query.where(audit.c.principal == principal)
        if after is not None:
            query = query.where(audit.c.id < _key(after))
        rows = uow.connection.execute(query).mappings().all()
        following = str(rows[limit - 1]["id"]) if len(rows) > limit else None
        return {"entries": [_view(row) for row in rows[:limit]], "next": following}

    @staticmethod
    def prune(uow: UnitOfWork, max_age: timedelta) -> int:
        statement = audit.delete().where(audit.c.at < uow.now() - max_age)
        return int(uow.connection.execute(statement).rowcount or 0)


def _key(after: str) -> int:
    if not after.isdigit():
        raise ValidationFailed(
            "after: not a key of audit.list (use the previous page's next)",
            [{"path": "$.after", "message": "expected the 'next' of a previous audit.list page"}],
        )
    return int(after)


def _view(row: Any) -> dict[str, Any]:
    by = Principal(row["principal"], row["source"], row["on_behalf_of"])
    at = as_utc(row["at"])
    return {
        "at": at.isoformat() if at else None,
        "by": by.to_dict(),
        "command": row["command"],
        "command_id": row["command_id"],
        "job_id": row["job_id"],
        "outcome": row["outcome"],
        "message": row["message"],
    }
