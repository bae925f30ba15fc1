"""Each job's last run that ran (executed or failed), kept beside the job rather than in it: recording an
outcome never waits on the row lock a scheduler pass holds on the job. ``job.list``'s ``failing`` filter
reads it through a partial index of the failed ones; a one-shot job removed by the pass that fired it gets
no row (only jobs still stored are recorded), and deleting a job removes its row."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from f8a_jobs_worker.persistence.tables import jobs, last_runs
from f8a_jobs_worker.persistence.unit_of_work import UnitOfWork

RAN = ("executed", "failed")
#: the ids of the jobs whose last run failed
FAILING = sa.select(last_runs.c.job_id).where(last_runs.c.outcome == "failed")
_STORED = sa.select(jobs.c.id).where(jobs.c.id.in_(sa.bindparam("ids", expanding=True)))
_FORGET = last_runs.delete().where(last_runs.c.job_id.in_(sa.bindparam("ids", expanding=True)))


#: PostgreSQL's one statement for :func:`record`: the rows of the jobs still stored, upserted in id order
#: (replicas recording the same jobs at once lock their rows in one order)
_RECORD_POSTGRESQL = sa.text(
    """
    INSERT INTO f8a_last_runs (job_id, outcome, finished_at)
    SELECT r.job_id, r.outcome, r.finished_at
    FROM unnest(CAST(:ids AS text[]), CAST(:outcomes AS text[]), CAST(:finished AS timestamptz[]))
        AS r(job_id, outcome, finished_at)
    JOIN f8a_jobs j ON j.id = r.job_id
    ORDER BY r.job_id
    ON CONFLICT (job_id) DO UPDATE
    SET outcome = excluded.outcome, finished_at = excluded.finished_at
    """
)


def record(uow: UnitOfWork, runs: list[dict[str, Any]]) -> None:
    """The latest of ``runs`` (history rows) that ran, per job still stored: one upsert."""
    latest = {run["job_id"]: run for run in runs if run["outcome"] in RAN}
    if not latest:
        return
    if uow.connection.dialect.name == "postgresql":
        values = {
            "ids": list(latest),
            "outcomes": [run["outcome"] for run in latest.values()],
            "finished": [run["finished_at"] for run in latest.values()],
        }
        uow.connection.execute(_RECORD_POSTGRESQL, values)
        return
    stored = set(uow.connection.execute(_STORED, {"ids": list(latest)}).scalars())
    rows = [  # in id order: replicas recording the same jobs at once lock their rows in one order
        {
            "job_id": job_id,
            "outcome": latest[job_id]["outcome"],
            "finished_at": latest[job_id]["finished_at"],
        }
        for job_id in sorted(stored)
    ]
    if not rows:
        return
    statement = sqlite.insert(last_runs)
    upsert = statement.on_conflict_do_update(
        index_elements=[last_runs.c.job_id],
        set_={"outcome": statement.excluded.outcome, "finished_at": statement.excluded.finished_at},
    )
    uow.connection.execute(upsert, rows)


def forget(uow: UnitOfWork, job_ids: list[str]) -> None:
    if job_ids:
        uow.connection.execute(_FORGET, {"ids": job_ids})
