"""Fixtures: a fresh PostgreSQL schema per test, workers that are always stopped, test handlers."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests import services

PLUGINS = Path(__file__).parent / "plugins"
# The test handlers are a separate "installed" distribution with entry points, found like any plug-in.
sys.path.insert(0, str(PLUGINS))

from f8a_jobs_worker.config import Settings  # noqa: E402
from f8a_jobs_worker.events import MemoryEventSink  # noqa: E402
from f8a_jobs_worker.worker import Worker  # noqa: E402


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    try:
        yield services.postgres_url()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    finally:
        services.stop_containers()


@pytest.fixture
def database_url(pg_admin_url: str) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a schema of this test's own, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(pg_admin_url, poolclass=sa.pool.NullPool)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.make_url(pg_admin_url).update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    with admin.begin() as connection:
        connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def empty_jobs_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "default_jobs"
    directory.mkdir()
    return directory


@pytest.fixture
def make_worker(database_url: str, empty_jobs_dir: Path) -> Iterator[Callable[..., Worker]]:
    """Start workers on this test's database; each is stopped at the end if the test did not."""
    started: list[Worker] = []

    def make(sink: MemoryEventSink | None = None, start: bool = True, **settings: Any) -> Worker:
        values: dict[str, Any] = {
            "database_url": database_url,
            "default_jobs_dir": empty_jobs_dir,
            "threads": 4,
        }
        values.update(settings)
        worker = Worker(Settings(**values), sink=sink or MemoryEventSink())
        if start:
            worker.start()
        started.append(worker)
        return worker

    yield make
    for worker in started:
        if worker.runtime.scheduler.state != 0:
            worker.stop()
