"""Rows inserted with one ``INSERT ... SELECT FROM unnest(...)`` on PostgreSQL behave as SQLAlchemy's
``INSERT`` of each: the same rows, the counting triggers fired, and errors in SQLAlchemy's form (a duplicate
key an ``IntegrityError`` that fails the transaction, a lost connection ``unavailable`` and never handed out
again). SQLite gets an ``executemany``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from f8a_jobs_worker.errors import Unavailable
from f8a_jobs_worker.persistence import counts
from f8a_jobs_worker.persistence.bulk import insert_rows
from f8a_jobs_worker.persistence.database import create_engine, store_errors
from f8a_jobs_worker.persistence.tables import job_failures, metadata, outbox


def _failures(n: int, start: int = 0) -> list[dict[str, object]]:
    return [
        {
            "failure_id": f"f-{i}",
            "failed_job_id": "job",
            "handler": "noop",
            "kwargs": None,
            "error": "it failed: \\ \t \n ' \" é",  # what an array's text form escapes
            "traceback": None,
            "failed_at": datetime(2026, 1, 1, tzinfo=UTC),
        }
        for i in range(start, start + n)
    ]


@pytest.fixture
def engine(tables_engine: sa.Engine) -> sa.Engine:
    return tables_engine


def test_rows_arrive_as_written_and_the_triggers_count_them(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        insert_rows(connection, job_failures, _failures(50))
        insert_rows(connection, job_failures, [])
    with engine.connect() as connection:
        rows = connection.execute(sa.select(job_failures).order_by(job_failures.c.failure_id)).all()
        assert counts.totals(connection)[counts.FAILURES] == 50
    assert sorted(r.failure_id for r in rows) == sorted(f"f-{i}" for i in range(50))
    assert {r.error for r in rows} == {"it failed: \\ \t \n ' \" é"}
    assert {r.kwargs for r in rows} == {None}
    assert {r.failed_at.replace(tzinfo=UTC) for r in rows} == {datetime(2026, 1, 1, tzinfo=UTC)}


def test_the_outbox_gets_its_generated_ids_in_order(engine: sa.Engine) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "kind": "event",
            "name": "job.created",
            "message_id": f"m{i}",
            "body": "{}",
            "created_at": now,
        }
        for i in range(20)
    ]
    with engine.begin() as connection:
        insert_rows(connection, outbox, rows)
    with engine.connect() as connection:
        found = connection.execute(sa.select(outbox.c.message_id).order_by(outbox.c.id)).scalars()
        assert list(found) == [f"m{i}" for i in range(20)]


def test_a_duplicate_key_fails_the_transaction_like_an_insert(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        insert_rows(connection, job_failures, _failures(3))
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        insert_rows(connection, job_failures, _failures(5, start=10))
        insert_rows(connection, job_failures, _failures(2, start=2))  # f-2 is there already
    with engine.connect() as connection:  # rolled back whole; the pool's connection still works
        assert counts.totals(connection)[counts.FAILURES] == 3


def test_a_lost_connection_is_unavailable_and_not_used_again(database_url: str) -> None:
    engine, killer = create_engine(database_url, pool_size=1), create_engine(database_url)
    with engine.begin() as connection:
        metadata.create_all(connection)
    with pytest.raises(Unavailable), store_errors("job store"), engine.begin() as connection:
        pid = connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        with killer.begin() as other:
            other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        insert_rows(connection, job_failures, _failures(5))
    with engine.connect() as connection:  # a new session, not the dead one
        assert connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one() != pid
        assert (
            connection.execute(sa.select(sa.func.count()).select_from(job_failures)).scalar() == 0
        )
    engine.dispose()
    killer.dispose()


def test_json_and_every_column_type_read_back_as_an_insert_writes_them(engine: sa.Engine) -> None:
    """SQLAlchemy's conversions (a JSON column's) are applied as its INSERT applies them."""
    from f8a_jobs_worker.persistence.tables import job_runs

    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def run(job_id: str, summary: object, duration: float | None) -> dict[str, object]:
        return {
            "job_id": job_id,
            "handler": "noop",
            "outcome": "executed",
            "scheduled_at": now,
            "started_at": now,
            "finished_at": now,
            "duration_s": duration,
            "summary": summary,
            "error": None,
            "failure_id": None,
        }

    summaries = [{"rows": 3, "nested": {"é": [1, None]}}, None, [], "text"]
    durations = [0.25, 0, 2, None]  # ints among floats: one array is of one type
    with engine.begin() as connection:
        insert_rows(
            connection,
            job_runs,
            [
                run(f"copy-{i}", s, d)
                for i, (s, d) in enumerate(zip(summaries, durations, strict=True))
            ],
        )
        connection.execute(
            job_runs.insert(),
            [
                run(f"insert-{i}", s, d)
                for i, (s, d) in enumerate(zip(summaries, durations, strict=True))
            ],
        )
    with engine.connect() as connection:
        rows = {r.job_id: r for r in connection.execute(sa.select(job_runs))}
    for i, summary in enumerate(summaries):
        copied, inserted = rows[f"copy-{i}"], rows[f"insert-{i}"]
        assert copied.summary == inserted.summary == summary
        assert copied.duration_s == inserted.duration_s == durations[i]
        assert copied.finished_at == inserted.finished_at
    with engine.connect() as connection:
        nulls = dict(
            connection.execute(
                sa.select(job_runs.c.job_id, job_runs.c.summary.is_(None)).where(
                    job_runs.c.job_id.in_(["copy-1", "insert-1"])
                )
            ).all()
        )
    assert nulls["copy-1"] == nulls["insert-1"]  # the same SQL NULL or JSON null
