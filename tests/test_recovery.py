"""PostgreSQL or RabbitMQ down for 15 s, made by a TCP fault proxy between them and a worker process (the
shared servers are never restarted): the worker lives through it, and commands and firings resume once the
dependency is back. How long that took after the return is measured and printed (it is bounded by the
retry policy's one-second probe, tests/test_retry.py), not asserted: timings belong to benchmarks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from f8a_jobs_worker.client import Client
from f8a_jobs_worker.persistence.tables import job_runs
from tests.faults import FaultProxy
from tests.messaging import ReplyCollector
from tests.process import WorkerProcess, worker_env

pytestmark = pytest.mark.slow

OUTAGE = 15.0


@pytest.fixture
def proxies() -> Iterator[list[FaultProxy]]:
    made: list[FaultProxy] = []
    yield made
    for proxy in made:
        proxy.close()


def through(url: str, proxy: FaultProxy) -> str:
    parsed = sa.make_url(url) if "://" in url and not url.startswith("amqp") else None
    if parsed is not None:
        return parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    return url.replace(":5672/", f":{proxy.port}/")


def runs_since(database_url: str, job_id: str, since: datetime) -> list[datetime]:
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        started = connection.execute(
            sa.select(job_runs.c.started_at).where(
                job_runs.c.job_id == job_id, job_runs.c.started_at >= since
            )
        )
        found = sorted(started.scalars())
    engine.dispose()
    return found


def wait_for_run(database_url: str, job_id: str, since: datetime, timeout: float) -> datetime:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = runs_since(database_url, job_id, since)
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no run of {job_id} since {since}")


def restore(
    proxy: FaultProxy, collector: ReplyCollector, replies: int, database_url: str
) -> tuple[float, float]:
    """End the outage; seconds until ``replies`` replies arrived, and until the ``tick`` job ran again."""
    back, back_at = time.monotonic(), datetime.now(UTC)
    proxy.restore()
    collector.until(lambda received: len(received) >= replies, timeout=30)
    answered = time.monotonic() - back
    fired = (wait_for_run(database_url, "tick", back_at, timeout=30) - back_at).total_seconds()
    return answered, fired


def start_worker(tmp_path: Path, names, database_url: str, broker_url: str, jobs: Path):
    env = worker_env(database_url, broker_url, names, jobs)
    worker = WorkerProcess.run(tmp_path, env)
    worker.wait_for("consuming commands")
    return worker


def test_a_store_outage_holds_commands_and_firings_until_it_returns(
    proxies, rabbitmq_url: str, database_url: str, names, empty_jobs_dir: Path, tmp_path: Path
) -> None:
    proxy = FaultProxy("127.0.0.1", sa.make_url(database_url).port or 5432)
    proxies.append(proxy)
    worker = start_worker(
        tmp_path, names, through(database_url, proxy), rabbitmq_url, empty_jobs_dir
    )
    collector = ReplyCollector(rabbitmq_url)
    try:
        with Client(rabbitmq_url, names=names, timeout=30) as client:
            client.call("job.create", handler="noop", job_id="tick", periodically="1")
            wait_for_run(database_url, "tick", datetime.now(UTC), timeout=10)
            proxy.refuse()
            cut = datetime.now(UTC)
            client.send(
                "job.create",
                {"handler": "noop", "job_id": "during", "when": "2099-01-01T00:00:00Z"},
                command_id="during",
                reply_to=collector.name,
            )
            collector.until(lambda replies: len(replies) >= 1, timeout=10)
            time.sleep(OUTAGE - 1)
            answered, fired = restore(proxy, collector, 2, database_url)
        assert worker.terminate() == 0
    finally:
        worker.stop()
        collector.close()
    interim, final = collector.replies
    assert interim["error"]["code"] == "unavailable"  # told once that it waits
    # the runs due during the outage were not lost: run once when it ended (coalesced, within the grace)
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        due_during = (
            connection.execute(
                sa.select(job_runs.c.outcome).where(
                    job_runs.c.job_id == "tick",
                    job_runs.c.scheduled_at > cut + timedelta(seconds=1),
                )
            )
            .scalars()
            .all()
        )
        during = connection.execute(
            sa.text("SELECT count(*) FROM f8a_jobs WHERE id = 'during'")
        ).scalar_one()
    engine.dispose()
    assert "executed" in due_during and set(due_during) <= {"executed", "missed"}
    assert during == 1  # one effect
    assert final["ok"] and final["result"]["job"]["job_id"] == "during"
    assert "job store back after" in worker.output
    print(
        f"after a {OUTAGE:.0f} s store outage: answered {answered:.2f} s, fired {fired:.2f} s after"
    )


def test_a_broker_outage_is_ridden_out_and_commands_resume(
    proxies, rabbitmq_url: str, database_url: str, names, empty_jobs_dir: Path, tmp_path: Path
) -> None:
    proxy = FaultProxy("127.0.0.1", 5672)
    proxies.append(proxy)
    worker = start_worker(
        tmp_path, names, database_url, through(rabbitmq_url, proxy), empty_jobs_dir
    )
    collector = ReplyCollector(rabbitmq_url)
    try:
        with Client(rabbitmq_url, names=names, timeout=30) as client:
            client.call("job.create", handler="noop", job_id="tick", periodically="1")
            proxy.refuse()
            client.send("scheduler.state", command_id="during", reply_to=collector.name)
            time.sleep(OUTAGE)
            answered, fired = restore(proxy, collector, 1, database_url)
        assert worker.terminate() == 0
    finally:
        worker.stop()
        collector.close()
    assert collector.replies[0]["ok"] and collector.replies[0]["command_id"] == "during"
    assert "broker back after" in worker.output
    print(
        f"after a {OUTAGE:.0f} s broker outage: answered {answered:.2f} s, fired {fired:.2f} s after"
    )
