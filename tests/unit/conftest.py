"""The unit layer: a whole worker on SQLite and the in-memory transport, with a clock the test moves.

No server and no waiting on wall-clock time: a test moves :class:`MovableClock` past a job's next run and
wakes the scheduler, and waits on the event that says the run happened. The same behaviours are checked
against PostgreSQL, RabbitMQ, SQS and the embedded broker by the tests one folder up.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from f8a_jobs_worker.client import Client
from f8a_jobs_worker.config import Settings
from f8a_jobs_worker.events import MemoryEventSink
from f8a_jobs_worker.messaging.memory import MemoryTransport
from f8a_jobs_worker.messaging.names import Names
from f8a_jobs_worker.worker import Worker
from tests.helpers import MovableClock


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(datetime(2030, 3, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
def broker_url() -> str:
    return f"memory://{uuid.uuid4().hex}"


@pytest.fixture
def unit_worker(
    tmp_path: Path, clock: MovableClock, broker_url: str
) -> Iterator[Callable[..., Worker]]:
    """Start a worker on a fresh SQLite file and the in-memory broker; stopped at the end."""
    started: list[Worker] = []
    jobs_dir = tmp_path / "default_jobs"
    jobs_dir.mkdir()

    def make(**settings: Any) -> Worker:
        values: dict[str, Any] = {
            "database_url": f"sqlite:///{tmp_path / 'jobs.sqlite'}",
            "broker_url": broker_url,
            "default_jobs_dir": jobs_dir,
            "threads": 2,
        }
        values.update(settings)
        worker = Worker(
            Settings(**values),
            sink=MemoryEventSink(),
            messaging=True,
            clock=clock,
            transports=lambda heartbeat: MemoryTransport(broker_url, heartbeat),
        )
        worker.start()
        started.append(worker)
        return worker

    yield make
    for worker in reversed(started):
        worker.stop()


@pytest.fixture
def client(broker_url: str) -> Iterator[Client]:
    client = Client(broker_url, Names(), timeout=10)
    yield client
    client.close()
