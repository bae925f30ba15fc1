"""Fixtures: a fresh PostgreSQL schema per test, workers that are always stopped, test handlers."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests import services

PLUGINS = Path(__file__).parent / "plugins"
# The test handlers are a separate "installed" distribution with entry points, found like any plug-in.
sys.path.insert(0, str(PLUGINS))

from click.testing import CliRunner, Result  # noqa: E402

from f8a_jobs_worker.cli.main import cli  # noqa: E402
from f8a_jobs_worker.client import Client  # noqa: E402
from f8a_jobs_worker.clock import SYSTEM, Clock  # noqa: E402
from f8a_jobs_worker.config import Settings  # noqa: E402
from f8a_jobs_worker.events import MemoryEventSink  # noqa: E402
from f8a_jobs_worker.messaging.names import Names  # noqa: E402
from f8a_jobs_worker.persistence import counts  # noqa: E402
from f8a_jobs_worker.persistence.database import create_engine  # noqa: E402
from f8a_jobs_worker.persistence.tables import metadata  # noqa: E402
from f8a_jobs_worker.worker import Worker  # noqa: E402
from tests.helpers import MovableClock  # noqa: E402
from tests.messaging import EventWatcher, kombu_connection  # noqa: E402


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


@pytest.fixture(params=["postgresql", "sqlite"])
def tables_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """An engine on PostgreSQL, then on SQLite, with the worker's own tables and their counting
    triggers."""
    url = (
        request.getfixturevalue("database_url")
        if request.param == "postgresql"
        else f"sqlite:///{tmp_path}/tables.sqlite"
    )
    made = create_engine(url)
    with made.begin() as connection:
        metadata.create_all(connection)
        counts.install(connection, None)
    yield made
    made.dispose()


def stop_all(workers: list[Worker]) -> None:
    """Stop the workers a test left running. A test that failed with its clock held still (or moved back)
    may leave runs claimed ahead of that clock, which a stop starts at their moment: the clock is moved past
    the furthest it has been first."""
    for worker in workers:
        if worker.started:
            clock = worker.transactions.clock
            if isinstance(clock, MovableClock):
                clock.set(clock.latest + timedelta(minutes=5))
            worker.stop()


@pytest.fixture
def empty_jobs_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "default_jobs"
    directory.mkdir()
    return directory


@pytest.fixture
def make_worker(database_url: str, empty_jobs_dir: Path) -> Iterator[Callable[..., Worker]]:
    """Start workers on this test's database; each is stopped at the end if the test did not."""
    started: list[Worker] = []

    def make(
        sink: MemoryEventSink | None = None,
        start: bool = True,
        messaging: bool = False,
        clock: Clock = SYSTEM,
        **settings: Any,
    ) -> Worker:
        values: dict[str, Any] = {
            "database_url": database_url,
            "default_jobs_dir": empty_jobs_dir,
            "threads": 4,
        }
        values.update(settings)
        worker = Worker(
            Settings(**values), sink=sink or MemoryEventSink(), messaging=messaging, clock=clock
        )
        if start:
            worker.start()
        started.append(worker)
        return worker

    yield make
    stop_all(started)
    # tests may read through a stopped worker's stores: close what that opened
    for worker in started:
        worker.engine.dispose()
        worker.analytics_engine.dispose()


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    try:
        return services.rabbitmq_url()
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def sqs_url() -> Iterator[str]:
    server = services.MotoServer()
    yield server.url
    server.stop()


@pytest.fixture(params=["rabbitmq", "sqs", "embedded"])
def broker_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The contract suite runs once per transport."""
    if request.param == "rabbitmq":
        return str(request.getfixturevalue("rabbitmq_url"))
    if request.param == "sqs":
        return str(request.getfixturevalue("sqs_url"))
    return f"filesystem://{tmp_path / 'broker'}"


@pytest.fixture
def names(request: pytest.FixtureRequest) -> Iterator[Names]:
    """Queue and exchange names of this test's own, so tests never see each other's messages.

    Durable RabbitMQ queues and exchanges outlive the test; they are deleted afterwards.
    """
    names = Names.with_prefix(f"t{uuid.uuid4().hex[:10]}")
    yield names
    if "rabbitmq_url" in request.fixturenames:
        delete_amqp_entities(request.getfixturevalue("rabbitmq_url"), names)


def delete_amqp_entities(url: str, names: Names) -> None:
    with kombu_connection(url) as conn:
        channel = conn.channel()
        for queue in (names.commands, names.dead):
            channel.queue_delete(queue)
        for exchange in (names.events, names.flows):
            channel.exchange_delete(exchange)
        channel.close()


@pytest.fixture
def messaging_worker(make_worker, broker_url: str, names: Names) -> Iterator[Callable[..., Worker]]:
    """Workers with the consumer and broker events on; stopped before the test's queues are deleted."""
    started: list[Worker] = []

    def make(**settings: Any) -> Worker:
        worker = make_worker(
            messaging=True,
            broker_url=broker_url,
            commands_queue=names.commands,
            dead_letter_queue=names.dead,
            events_exchange=names.events,
            flows_exchange=names.flows,
            **settings,
        )
        started.append(worker)
        return worker

    yield make
    stop_all(started)


@pytest.fixture
def client(broker_url: str, names: Names) -> Iterator[Client]:
    with Client(broker_url, names=names, timeout=30) as connected:
        yield connected


@pytest.fixture
def watcher(broker_url: str, names: Names) -> Iterator[EventWatcher]:
    watching = EventWatcher(broker_url, names.events)
    yield watching
    watching.close()


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


@pytest.fixture
def run_cli(broker_url: str, names, monkeypatch):
    """Run the CLI against this test's broker and queues, as a user's shell would."""
    for key in list(os.environ):
        if key.startswith("F8A_JOBS_"):
            monkeypatch.delenv(key)
    env = {
        "F8A_JOBS_BROKER_URL": broker_url,
        "F8A_JOBS_COMMANDS_QUEUE": names.commands,
        "F8A_JOBS_DEAD_LETTER_QUEUE": names.dead,
        "F8A_JOBS_EVENTS_EXCHANGE": names.events,
        "F8A_JOBS_FLOWS_EXCHANGE": names.flows,
    }

    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)

    return run
