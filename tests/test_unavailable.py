"""A job store that stops answering: commands are refused as unavailable, nothing half-applied, then recovery."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from f8a_jobs_worker.config import Settings
from f8a_jobs_worker.errors import Unavailable
from f8a_jobs_worker.events import MemoryEventSink
from f8a_jobs_worker.worker import Worker


@pytest.fixture
def own_role(pg_admin_url: str, database_url: str):
    """A login role of this test's own on the test schema, which the test can lock out and let back in."""
    role = f"r_{uuid.uuid4().hex[:10]}"
    url = sa.make_url(database_url)
    schema = url.query["options"].split("=", 1)[1]
    admin = sa.create_engine(pg_admin_url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")

    def sql(statement: str) -> None:
        with admin.connect() as connection:
            connection.execute(sa.text(statement))

    sql(f'CREATE ROLE "{role}" LOGIN')
    sql(f'GRANT ALL ON SCHEMA "{schema}" TO "{role}"')
    yield url.set(username=role, password=None).render_as_string(hide_password=False), role, sql
    sql(f'ALTER ROLE "{role}" LOGIN')
    sql(f'DROP SCHEMA "{schema}" CASCADE')
    sql(f'CREATE SCHEMA "{schema}"')
    sql(f'DROP OWNED BY "{role}"')
    sql(f'DROP ROLE "{role}"')
    admin.dispose()


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
