"""The scheduler pass's statements, and the start's, read a few rows of the job table, never all of them;
the outbox relay's take and the heartbeat's adoption read the rows they need, not those sent before or
those of other replicas.

A plan that reads every row is invisible on a test-sized store and costs seconds a pass at ten million jobs
(bench/scale.py found one: a ``min()`` PostgreSQL cannot take from an index inside a ``WITH``). So each
statement is captured as sent, run again under ``EXPLAIN ANALYZE`` in a transaction rolled back, and the rows
(and index entries) its plan read from the table are counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bench.jobfill import fill_worker_store
from f8a_jobs_worker.events.model import Event
from f8a_jobs_worker.persistence.job_repository import JobRepository
from f8a_jobs_worker.persistence.outbox import Outbox, event_row
from f8a_jobs_worker.persistence.replicas import Replicas
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


def rows_read(node: dict[str, Any], table: str = "f8a_jobs") -> int:
    """Rows the plan ``node`` and the nodes under it read from ``table`` (kept or filtered out), and the
    entries a bitmap scan of one of its indexes returned (those of dead rows included)."""
    own = 0
    scans_table = node.get("Relation Name") == table and "Scan" in node["Node Type"]
    if scans_table or node.get("Index Name", "").startswith(f"ix_{table}_"):
        removed = node.get("Rows Removed by Filter", 0) + node.get(
            "Rows Removed by Index Recheck", 0
        )
        own = node["Actual Rows"] + removed
    return own + sum(rows_read(child, table) for child in node.get("Plans", []))


def read_by(engine: sa.Engine, sent: Sent, table: str = "f8a_jobs") -> list[tuple[int, str]]:
    """For each statement, the rows of ``table`` it read, and the statement; nothing of it kept."""
    found = []
    with engine.connect() as connection:
        for statement, parameters in sent:
            transaction = connection.begin()
            explain = f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}"
            plan = connection.exec_driver_sql(explain, parameters).scalar_one()
            found.append((rows_read(plan[0]["Plan"], table), statement))
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


def _outbox_with_history(database_url: str) -> tuple[sa.Engine, Transactions]:
    """An outbox where replica-a sent 2,000 rows (marked, their index entries left for a vacuum) and has 10
    unsent, and replica-b has 2,000 unsent."""
    engine = sa.create_engine(database_url)
    fill_worker_store(engine, [], "none")  # the tables
    transactions = Transactions(engine)
    mine, other = Outbox("replica-a"), Outbox("replica-b")

    def write(outbox: Outbox, count: int) -> None:
        with transactions.begin() as uow:
            rows = [event_row(Event("job.executed", f"job-{n}"), uow.now()) for n in range(count)]
            outbox.add(uow.connection, rows)

    write(mine, 2000)
    with transactions.begin() as uow:
        assert len(mine.take(uow.connection, 5000, uow.now())) == 2000
    write(other, 2000)
    write(mine, 10)
    with engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE f8a_outbox")
    return engine, transactions


def _assert_reads_few_outbox_rows(engine: sa.Engine, sent: Sent) -> None:
    statements = [(s, p) for s, p in sent if "f8a_outbox" in s]
    assert statements, "no statement on the outbox"
    for rows, statement in read_by(engine, statements, "f8a_outbox"):
        assert rows <= 40, f"{rows} rows of f8a_outbox read by {statement}"


def test_a_relays_take_reads_its_unsent_rows_not_those_sent_or_of_other_replicas(
    database_url: str,
) -> None:
    """Sent rows leave their entries in the index of unsent rows until a vacuum: a take that read them all
    grew with every event sent (4 ms after 6,000 creates), and read the rows other replicas send too."""
    engine, transactions = _outbox_with_history(database_url)
    with captured(engine) as sent, transactions.begin() as uow:
        assert len(Outbox("replica-a").take(uow.connection, 500, uow.now())) == 10
    _assert_reads_few_outbox_rows(engine, sent)
    engine.dispose()


def test_a_heartbeat_looks_for_gone_replicas_rows_without_reading_those_of_live_ones(
    database_url: str,
) -> None:
    """Every heartbeat adopts the unsent rows of replicas that are gone: with a backlog (a broker outage)
    reading every unsent row cost 300-500 ms a heartbeat at a million."""
    engine, transactions = _outbox_with_history(database_url)
    with transactions.begin() as uow:
        for name in ("replica-a", "replica-b"):
            Replicas(name).register(uow)
    with captured(engine) as sent, transactions.begin() as uow:
        assert Replicas("replica-a").adopt_outbox(uow) == 0
    _assert_reads_few_outbox_rows(engine, sent)
    engine.dispose()
