"""The outbox relay's read: the rows a replica wrote and has not sent, taken (read and marked published) in
one statement, in the order they were written; a transaction rolled back (a send that failed) leaves them
to be taken again. The unsent rows of replicas that are gone (or of none) are adopted by one that is there.
PostgreSQL and SQLite."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from f8a_jobs_worker.events.model import Event
from f8a_jobs_worker.persistence.outbox import Outbox, event_row
from f8a_jobs_worker.persistence.replicas import Replicas
from f8a_jobs_worker.persistence.tables import outbox
from f8a_jobs_worker.persistence.unit_of_work import Transactions


@pytest.fixture
def engine(tables_engine: sa.Engine) -> sa.Engine:
    return tables_engine


def _write(transactions: Transactions, names: list[str]) -> None:
    with transactions.begin() as uow:
        for name in names:
            uow.emit(Event("job.created", name, {}))


@pytest.mark.parametrize("returning", [True, False], ids=["returning", "older-sqlite"])
def test_rows_are_taken_in_order_once_and_given_back_by_a_rollback(
    engine: sa.Engine, returning: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(Without ``UPDATE ... RETURNING``, SQLite before 3.35, a read and an update.)"""
    if not returning:
        monkeypatch.setattr(engine.dialect, "update_returning", False)
    mine, other = Transactions(engine, Outbox("a")), Transactions(engine, Outbox("b"))
    _write(mine, [f"j{i}" for i in range(7)])
    _write(other, ["theirs"])
    _write(mine, ["j7"])
    now = datetime(2026, 1, 1, tzinfo=UTC)

    class SendFailed(Exception):
        pass

    with pytest.raises(SendFailed), mine.begin() as uow:
        taken = uow.outbox.take(uow.connection, 5, now)
        assert [row.id for row in taken] == sorted(row.id for row in taken)
        raise SendFailed  # nothing sent: the marks are rolled back
    with mine.begin() as uow:
        first = uow.outbox.take(uow.connection, 5, now)
    with mine.begin() as uow:
        rest = uow.outbox.take(uow.connection, 5, now)
        assert uow.outbox.take(uow.connection, 5, now) == []
    assert first == taken
    jobs = [_job(row.body) for row in first + rest]
    assert jobs == [f"j{i}" for i in range(8)]  # in the order written, only this replica's
    with engine.connect() as connection:
        unsent = connection.execute(
            sa.select(outbox.c.replica).where(outbox.c.published_at.is_(None))
        ).scalars()
        assert list(unsent) == ["b"]
        marked = connection.execute(
            sa.select(sa.func.count()).where(outbox.c.published_at.is_not(None))
        ).scalar()
        assert marked == 8


def _job(body: str) -> str:
    job_id: str = json.loads(body)["job_id"]
    return job_id


def test_an_event_row_is_what_the_relay_reads_back(engine: sa.Engine) -> None:
    transactions = Transactions(engine, Outbox(None))
    event = Event("job.paused", "x", {"reason": "asked"}, datetime.now(UTC))
    with transactions.begin() as uow:
        uow.emit(event)
    with transactions.begin() as uow:
        (row,) = uow.outbox.take(uow.connection, 10, datetime.now(UTC))
    expected = event_row(event, datetime.now(UTC))
    assert (row.kind, row.name, row.message_id, row.body) == (
        "event",
        "job.paused",
        event.event_id,
        expected["body"],
    )


def test_the_unsent_rows_of_gone_replicas_and_of_none_are_adopted_and_no_others(
    engine: sa.Engine,
) -> None:
    here, still_there = Replicas("here"), Replicas("still-there")
    for replica in (here, still_there):
        with Transactions(engine).begin() as uow:
            replica.register(uow)
    writers = {
        name: Transactions(engine, Outbox(name)) for name in ("gone-1", "gone-2", "still-there")
    }
    for name, writer in writers.items():
        _write(writer, [f"{name}-{i}" for i in range(3)])
    _write(Transactions(engine, Outbox(None)), ["nobodys"])
    with writers["gone-1"].begin() as uow:  # sent already: stays as it is
        uow.outbox.take(uow.connection, 1, datetime.now(UTC))
    with Transactions(engine).begin() as uow:
        assert here.adopt_outbox(uow) == 6
    with Transactions(engine).begin() as uow:
        assert here.adopt_outbox(uow) == 0
    with engine.connect() as connection:
        unsent = connection.execute(
            sa.select(outbox.c.replica, outbox.c.body).where(outbox.c.published_at.is_(None))
        ).all()
    owners = {_job(body): replica for replica, body in unsent}
    assert owners == {
        "gone-1-1": "here",
        "gone-1-2": "here",
        **{f"gone-2-{i}": "here" for i in range(3)},
        "nobodys": "here",
        **{f"still-there-{i}": "still-there" for i in range(3)},
    }
