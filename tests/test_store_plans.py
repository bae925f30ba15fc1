"""The scheduler pass's statements, and the start's, read a few rows of the job table, never all of them.

A plan that reads every row is invisible on a test-sized store and costs seconds a pass at ten million jobs
(bench/scale.py found one: a ``min()`` PostgreSQL cannot take from an index inside a ``WITH``). So each
statement a pass sends is captured as sent, run again under ``EXPLAIN ANALYZE`` in a transaction rolled back,
and the rows its plan read from ``f8a_jobs`` are counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bench.jobfill import fill_worker_store
from f8a_jobs_worker.persistence.job_repository import JobRepository
from f8a_jobs_worker.persistence.unit_of_work import Transactions

Sent = list[tuple[str, Any]]


@contextmanager
def captured(engine: sa.Engine) -> Iterator[Sent]:
    """Every statement ``engine`` sends meanwhile, as sent (SQL and parameters)."""
    sent: Sent = []

    def note(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        sa.event.remove(engine, "before_cursor_execute", note)


def rows_read(node: dict[str, Any]) -> int:
    """Rows the plan ``node`` and the nodes under it read from ``f8a_jobs`` (kept or filtered out)."""
    own = 0
    if node.get("Relation Name") == "f8a_jobs" and "Scan" in node["Node Type"]:
        own = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
    return own + sum(rows_read(child) for child in node.get("Plans", []))


def read_by(engine: sa.Engine, sent: Sent) -> list[tuple[int, str]]:
    """For each statement, the rows of ``f8a_jobs`` it read, and the statement; nothing of it kept."""
    found = []
    with engine.connect() as connection:
        for statement, parameters in sent:
            transaction = connection.begin()
            explain = f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}"
            plan = connection.exec_driver_sql(explain, parameters).scalar_one()
            found.append((rows_read(plan[0]["Plan"]), statement))
            transaction.rollback()
    return found


def test_a_pass_and_a_start_read_the_rows_they_need_not_the_table(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    now = datetime.now(UTC)
    fill_worker_store(engine, [now - timedelta(seconds=1)] * 10, "due")
    fill_worker_store(engine, [now + timedelta(days=1 + n % 30) for n in range(2000)], "later")
    with engine.begin() as connection:  # statistics as autovacuum would gather them
        connection.exec_driver_sql("ANALYZE f8a_jobs")
    repository = JobRepository()
    transactions = Transactions(engine)
    calls: list[Callable[[Any], object]] = [
        lambda uow: repository.claim_due(uow, now),
        lambda uow: repository.advance(uow, [], ["due-0", "due-1"]),
        repository.next_run_time,
        repository.restore_repaired,  # at every start
    ]
    for call in calls:
        with captured(engine) as sent, transactions.begin() as uow:
            call(uow)
        statements = [(s, p) for s, p in sent if "f8a_jobs" in s]
        assert statements, "the call sent no statement on the job table"
        for rows, statement in read_by(engine, statements):
            assert rows <= 20, f"{rows} of 2,010 rows read by {statement}"
    engine.dispose()
