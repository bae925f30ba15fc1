"""Filling job stores fast: many one-shot jobs written straight into a store's table.

Going through ``job.create`` would make the set-up of a 100,000-job store take longer than the benchmarks, so
jobs are written as rows, with one multi-row INSERT per chunk, in the format of the store that will read them:
the worker's ``f8a_jobs`` (docs/architecture.md, "The job table": APScheduler 3's job state, pickled, beside
its next run time, handler and kind), its tables made by the worker's own ``db upgrade``; or APScheduler's
stock ``SQLAlchemyJobStore`` for the bare comparison.
"""

from __future__ import annotations

import itertools
import pickle
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from apscheduler.job import Job
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.util import datetime_to_utc_timestamp

from bench.harness import upgrade_store

#: the worker's job table as data (its columns; ``job_state`` holds APScheduler 3's job state, version 1)
WORKER_JOBS = sa.table(
    "f8a_jobs",
    *(sa.column(name) for name in ("id", "next_run_time", "job_state", "handler", "is_default")),
)
#: what the state names as the job's function: never called by the worker (0.1.0 replicas import it)
WORKER_FUNC = "f8a_jobs_worker.scheduling.runner:run_job"
BARE_TABLE = "bare_jobs"
BARE_FUNC = "bench.bare_job:touch"
CHUNK = 2000

_scheduler = BackgroundScheduler(timezone=UTC)  # only lends its timezone to Job(); never started


def _one_shot(job_id: str, func: str, args: tuple[Any, ...], run_at: datetime, **kw: Any) -> Job:
    return Job(
        _scheduler,
        id=job_id,
        func=func,
        args=args,
        kwargs=kw.pop("kwargs", {}),
        name=kw.pop("name", job_id),
        trigger=DateTrigger(run_at),
        executor=kw.pop("executor", "default"),
        misfire_grace_time=None,  # catch-up runs however late, as after a long downtime
        coalesce=True,
        max_instances=1,
        next_run_time=run_at,
    )


def _insert(
    engine: sa.Engine, table: sa.Table | sa.TableClause, rows: Iterable[dict[str, Any]]
) -> int:
    """One multi-row INSERT statement per chunk (an executemany would be one statement per row, and run
    the job table's counting trigger once per row)."""
    written = 0
    chunk: list[dict[str, Any]] = []
    with engine.begin() as connection:
        for row in rows:
            chunk.append(row)
            if len(chunk) == CHUNK:
                connection.execute(table.insert().values(chunk))
                written += len(chunk)
                chunk = []
        if chunk:
            connection.execute(table.insert().values(chunk))
            written += len(chunk)
    return written


def _worker_rows(
    run_times: Iterable[datetime], prefix: str, handler: str, kwargs: dict[str, Any] | None
) -> Iterator[dict[str, Any]]:
    """Rows of the worker's ``f8a_jobs``: one one-shot job of ``handler`` per run time."""
    meta = {"default": False, "cron": None, "on_interrupt": "report", "overlap": "skip"}
    for n, run_at in enumerate(run_times):
        state = {
            "version": 1,
            "id": f"{prefix}-{n}",
            "func": WORKER_FUNC,
            "trigger": DateTrigger(run_at),
            "executor": "default",
            "args": (handler, meta),
            "kwargs": kwargs or {},
            "name": handler,
            "misfire_grace_time": None,  # catch-up runs however late, as after a long downtime
            "coalesce": True,
            "max_instances": 1,
            "next_run_time": run_at,
        }
        yield {
            "id": state["id"],
            "next_run_time": datetime_to_utc_timestamp(run_at),
            "job_state": pickle.dumps(state, pickle.HIGHEST_PROTOCOL),
            "handler": handler,
            "is_default": False,
        }


def fill_worker_store(
    engine: sa.Engine,
    run_times: Iterable[datetime],
    prefix: str = "job",
    handler: str = "noop",
    kwargs: dict[str, Any] | None = None,
) -> int:
    """One one-shot job of ``handler`` (``noop``) per run time in the worker's ``f8a_jobs`` table (its
    tables made first if missing)."""
    upgrade_store(engine.url.render_as_string(hide_password=False))
    return _insert(engine, WORKER_JOBS, _worker_rows(run_times, prefix, handler, kwargs))


def copy_worker_store(
    engine: sa.Engine,
    run_times: Iterable[datetime],
    prefix: str = "job",
    per_commit: int = 200_000,
    before_commit: Callable[[Any], None] | None = None,
) -> int:
    """:func:`fill_worker_store` by ``COPY`` on PostgreSQL, a commit every ``per_commit`` rows: the way to
    millions of jobs (each COPY fires the table's counting trigger once). ``before_commit`` is called with
    the (psycopg) connection before each commit: the rows are there, and no one else sees them yet."""
    upgrade_store(engine.url.render_as_string(hide_password=False))
    columns = ("id", "next_run_time", "job_state", "handler", "is_default")
    sql = f"COPY f8a_jobs ({', '.join(columns)}) FROM STDIN"
    written = 0
    rows = _worker_rows(run_times, prefix, "noop", None)
    raw = engine.raw_connection()
    try:
        while True:
            batch = list(itertools.islice(rows, per_commit))
            if not batch:
                return written
            cursor = raw.cursor()
            with cursor.copy(sql) as copy:
                for row in batch:
                    copy.write_row(tuple(row[c] for c in columns))
            if before_commit is not None:
                before_commit(raw)
            raw.commit()
            written += len(batch)
    finally:
        raw.close()


def fill_bare_store(engine: sa.Engine, run_times: Iterable[datetime], prefix: str = "job") -> int:
    """The same jobs for bare APScheduler: its stock table, a function that notes how late it ran."""
    store = SQLAlchemyJobStore(engine=engine, tablename=BARE_TABLE)
    store.jobs_t.create(engine, checkfirst=True)

    def rows() -> Iterable[dict[str, Any]]:
        for n, run_at in enumerate(run_times):
            job = _one_shot(f"{prefix}-{n}", BARE_FUNC, (run_at.timestamp(),), run_at)
            yield {
                "id": job.id,
                "next_run_time": datetime_to_utc_timestamp(run_at),
                "job_state": pickle.dumps(job.__getstate__(), store.pickle_protocol),
            }

    return _insert(engine, store.jobs_t, rows())
