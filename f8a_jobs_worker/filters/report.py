"""``report.analyses``: the original service's ``/debug/analyses-report``, on the analytics database.

Counts of one ecosystem's analyses started in ``[from_date, to_date)`` (either bound may be left out): all,
finished, unfinished, of distinct versions (all and finished), the packages with a finished analysis among
them, and the ecosystem's packages and versions. Two aggregate queries in one read-only transaction with the
filter timeout, like every ``$filter``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from f8a_jobs_worker.filters import analytics_tables as t
from f8a_jobs_worker.filters.query import FilterRunner
from f8a_jobs_worker.moments import parse_iso


def _naive_utc(value: Any, field: str) -> datetime | None:
    """The analytics database stores naive UTC times."""
    return None if value is None else parse_iso(value, field).replace(tzinfo=None)


def analyses_report(
    runner: FilterRunner, ecosystem: str, from_date: Any = None, to_date: Any = None
) -> dict[str, Any]:
    start, end = _naive_utc(from_date, "from_date"), _naive_utc(to_date, "to_date")
    a, v, p, e = t.analyses, t.versions, t.packages, t.ecosystems
    finished = a.c.finished_at.is_not(None)
    conditions = [e.c.name == ecosystem]
    if start is not None:
        conditions.append(a.c.started_at >= start)
    if end is not None:
        conditions.append(a.c.started_at < end)
    analysed = (
        sa.select(
            sa.func.count(a.c.id),
            sa.func.count(a.c.id).filter(finished),
            sa.func.count(sa.distinct(a.c.version_id)),
            sa.func.count(sa.distinct(a.c.version_id)).filter(finished),
            sa.func.count(sa.distinct(p.c.id)).filter(finished),
        )
        .select_from(
            a.join(v, a.c.version_id == v.c.id)
            .join(p, v.c.package_id == p.c.id)
            .join(e, p.c.ecosystem_id == e.c.id)
        )
        .where(*conditions)
    )
    known = sa.select(
        sa.select(sa.func.count())
        .select_from(p.join(e, p.c.ecosystem_id == e.c.id))
        .where(e.c.name == ecosystem)
        .scalar_subquery(),
        sa.select(sa.func.count())
        .select_from(v.join(p, v.c.package_id == p.c.id).join(e, p.c.ecosystem_id == e.c.id))
        .where(e.c.name == ecosystem)
        .scalar_subquery(),
    )
    with runner.read_only() as connection:
        total, done, unique, done_unique, packages_done = connection.execute(analysed).one()
        packages, versions = connection.execute(known).one()
    return {
        "ecosystem": ecosystem,
        "from_date": start.isoformat() if start else None,
        "to_date": end.isoformat() if end else None,
        "report": {
            "analyses": total,
            "analyses_finished": done,
            "analyses_unfinished": total - done,
            "analyses_unique": unique,
            "analyses_finished_unique": done_unique,
            "packages": packages,
            "packages_finished": packages_done,
            "versions": versions,
        },
    }
