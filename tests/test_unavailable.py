"""A job store that stops answering: commands are refused as unavailable, nothing half-applied, then recovery."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from f8a_jobs_worker.client import Client
from f8a_jobs_worker.config import Settings
from f8a_jobs_worker.errors import Unavailable
from f8a_jobs_worker.events import MemoryEventSink
from f8a_jobs_worker.worker import Worker
from tests.helpers import eventually, records
from tests.messaging import ReplyCollector


def test_store_outage_is_unavailable_and_recovers(own_role, empty_jobs_dir: Path) -> None:
    url, role, sql = own_role
    worker = Worker(
        Settings(database_url=url, default_jobs_dir=empty_jobs_dir, threads=2),
        sink=MemoryEventSink(),
    )
    worker.start()
    try:
        worker.service.create_job("noop", job_id="before", periodically="1 day")
        sql(f'ALTER ROLE "{role}" NOLOGIN')
        sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'")

        health = worker.service.health()
        assert (health["live"], health["ready"]) == (True, False)
        assert health["store"].startswith("job store unavailable")
        with pytest.raises(Unavailable) as caught:
            worker.service.create_job("noop", job_id="during", periodically="1 day")
        assert caught.value.code == "unavailable"
        assert url.split("@")[0] not in caught.value.message  # no URL in the message
        with pytest.raises(Unavailable):
            worker.service.get_job("before")

        sql(f'ALTER ROLE "{role}" LOGIN')
        assert worker.service.health() == {"live": True, "ready": True, "store": "ok"}
        assert worker.service.get_job("before")["job"]["job_id"] == "before"
        listed = [j["job_id"] for j in worker.service.list_jobs()["jobs"]]
        assert listed == ["before"]  # the refused command left nothing behind
    finally:
        worker.stop()


def test_a_command_during_an_outage_is_retried_not_lost(
    own_role, broker_url: str, names, empty_jobs_dir: Path
) -> None:
    url, role, sql = own_role
    worker = Worker(
        Settings(
            database_url=url,
            broker_url=broker_url,
            default_jobs_dir=empty_jobs_dir,
            threads=2,
            commands_queue=names.commands,
            dead_letter_queue=names.dead,
            events_exchange=names.events,
            flows_exchange=names.flows,
        ),
        messaging=True,
    )
    worker.start()
    collector = ReplyCollector(broker_url)
    try:
        sql(f'ALTER ROLE "{role}" NOLOGIN')
        sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'")
        with Client(broker_url, names=names) as client:
            client.send(
                "job.create",
                {"handler": "noop", "job_id": "patient", "periodically": "1 day"},
                command_id="during-outage",
                reply_to=collector.name,
            )
        collector.until(lambda replies: len(replies) >= 1, timeout=30)
        assert collector.replies[0]["error"]["code"] == "unavailable"
        time.sleep(2)  # a retry or two while the store is still down
        sql(f'ALTER ROLE "{role}" LOGIN')
        collector.until(lambda replies: any(r["ok"] for r in replies), timeout=60)
        final = [r for r in collector.replies if r["ok"]]
        assert len(final) == 1
        assert final[0]["result"]["job"]["job_id"] == "patient"
        assert [r["error"]["code"] for r in collector.replies if not r["ok"]] == ["unavailable"]
        assert worker.service.list_jobs()["jobs_count"] == 1
    finally:
        collector.close()
        worker.stop()


def test_jobs_keep_firing_while_the_broker_is_away(make_worker, tmp_path: Path) -> None:
    """No broker at all: commands cannot arrive, but the scheduler fires, records runs, and stops cleanly."""
    out = tmp_path / "runs.jsonl"
    worker = make_worker(messaging=True, broker_url="amqp://guest:guest@127.0.0.1:1//")
    worker.service.create_job("record", {"path": str(out)}, job_id="offline", periodically="1 day")
    eventually(lambda: worker.service.job_history("offline")["runs"], timeout=30)
    assert [r["outcome"] for r in worker.service.job_history("offline")["runs"]] == ["executed"]
    assert len(records(out)) == 1
    started = time.monotonic()
    worker.stop()
    assert worker.consumer is not None and not worker.consumer.alive
    assert time.monotonic() - started < 15


@pytest.mark.parametrize("idle_ping", [True, False])
def test_a_pooled_connection_that_died_idle(
    database_url: str, pg_admin_url: str, monkeypatch, idle_ping
) -> None:
    """A pooled connection whose server process went away while it sat in the pool: pinged before use after
    ``PING_AFTER_IDLE`` and replaced without an error; used sooner, its statement fails as ``unavailable``
    (which callers retry) and the pool replaces it for the next checkout."""
    import sqlalchemy as sa

    from f8a_jobs_worker.persistence import database

    monkeypatch.setattr(database, "PING_AFTER_IDLE", 0.0 if idle_ping else 3600.0)
    engine = database.create_engine(database_url)
    pid = "SELECT pg_backend_pid()"
    with engine.connect() as connection:
        first = connection.exec_driver_sql(pid).scalar()
    admin = sa.create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        assert connection.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": first}).scalar()
        gone = sa.text("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = :p")
        eventually(lambda: connection.execute(gone, {"p": first}).scalar())
    admin.dispose()
    if not idle_ping:
        with pytest.raises(Unavailable), database.store_errors("job store"), engine.connect() as c:
            c.exec_driver_sql(pid)
    with engine.connect() as connection:
        second = connection.exec_driver_sql(pid).scalar()
    engine.dispose()
    assert second != first
