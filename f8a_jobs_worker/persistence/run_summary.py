"""``runs.summary``: the runs recorded in a recent window, by outcome, and how late they started (cumulative
buckets, as Prometheus histograms have them), in one query over the index on ``finished_at``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from f8a_jobs_worker.persistence.tables import job_runs
from f8a_jobs_worker.persistence.unit_of_work import UnitOfWork

OUTCOMES = ("executed", "failed", "missed", "interrupted")
#: upper bounds of the lateness buckets, milliseconds (the last bucket has none)
BUCKETS_MS = (10, 50, 100, 500, 1000, 5000, 60000)


def _lateness_ms(dialect: str) -> sa.ColumnElement[Any]:
    late = job_runs.c.started_at - job_runs.c.scheduled_at
    if dialect == "postgresql":
        return sa.extract("epoch", late) * 1000
    started, scheduled = (
        sa.func.julianday(job_runs.c.started_at),
        sa.func.julianday(job_runs.c.scheduled_at),
    )
    return (started - scheduled) * 86_400_000.0


def summary(uow: UnitOfWork, window_s: int) -> dict[str, Any]:
    since = uow.now() - timedelta(seconds=window_s)
    recent = job_runs.c.finished_at >= since
    counted = uow.connection.execute(
        sa.select(job_runs.c.outcome, sa.func.count()).where(recent).group_by(job_runs.c.outcome)
    ).all()
    late = _lateness_ms(uow.connection.dialect.name)
    started = sa.and_(
        recent, job_runs.c.started_at.is_not(None), job_runs.c.scheduled_at.is_not(None)
    )
    columns: list[sa.ColumnElement[Any]] = [sa.func.count(), sa.func.max(late)] + [
        sa.func.coalesce(sa.func.sum(sa.case((late <= bound, 1), else_=0)), 0)
        for bound in BUCKETS_MS
    ]
    total, longest, *within = uow.connection.execute(sa.select(*columns).where(started)).one()
    buckets = [{"le_ms": b, "count": int(n)} for b, n in zip(BUCKETS_MS, within, strict=True)]
    return {
        "since": since.isoformat(),
        "window_s": window_s,
        "outcomes": {outcome: 0 for outcome in OUTCOMES} | {o: int(n) for o, n in counted},
        "lateness": {
            "count": int(total),
            "max_ms": None if longest is None else round(max(float(longest), 0.0), 3),
            "buckets": [*buckets, {"le_ms": None, "count": int(total)}],
        },
    }
