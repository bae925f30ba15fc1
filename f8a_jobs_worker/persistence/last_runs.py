"""Each job's last run that ran (executed or failed), kept beside the job rather than in it: recording an
outcome never waits on the row lock a scheduler pass holds on the job. ``job.list``'s ``failing`` filter
reads it through a partial index of the failed ones; a one-shot job removed by the pass that fired it gets
no row (only jobs still stored are recorded), and deleting a job removes its row."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from f8a_jobs_worker.persistence.tables import jobs, last_runs
from f8a_jobs_worker.persistence.unit_of_work import UnitOfWork

RAN = ("executed", "failed")
#: the ids of the jobs whose last run failed
FAILING = sa.select(last_runs.c.job_id).where(last_runs.c.outcome == "failed")
_STORED = sa.select(jobs.c.id).where(jobs.c.id.in_(sa.bindparam("ids", expanding=True)))
_FORGET = last_runs.delete().where(last_runs.c.job_id.in_(sa.bindparam("ids", expanding=True)))


def record(uow: UnitOfWork, runs: list[dict[str, Any]]) -> None:
    """The latest of ``runs`` (history rows) that ran, per job still stored: one upsert."""
    latest = {run["job_id"]: run for run in runs if run["outcome"] in RAN}
    if not latest:
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
    dialect = postgresql if uow.connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(last_runs)
    upsert = statement.on_conflict_do_update(
        index_elements=[last_runs.c.job_id],
        set_={"outcome": statement.excluded.outcome, "finished_at": statement.excluded.finished_at},
    )
    uow.connection.execute(upsert, rows)


def forget(uow: UnitOfWork, job_ids: list[str]) -> None:
    if job_ids:
        uow.connection.execute(_FORGET, {"ids": job_ids})
