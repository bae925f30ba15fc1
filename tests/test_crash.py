"""kill -9 in the middle of a stream of commands: none lost, none applied twice.

Runs on every transport: RabbitMQ and SQS give unacknowledged messages back after a crash, and the embedded
broker keeps a message in its in-flight folder until it is acknowledged.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from f8a_jobs_worker.client import Client
from tests.messaging import ReplyCollector
from tests.process import WorkerProcess, worker_env

pytestmark = pytest.mark.slow

COMMANDS = 300


@pytest.fixture(params=["rabbitmq", "sqs", "embedded"])
def crash_broker(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "embedded":
        return f"filesystem://{tmp_path / 'broker'}"
    return str(request.getfixturevalue(f"{request.param}_url"))


def test_kill_9_mid_stream_loses_none_and_applies_none_twice(
    crash_broker: str, database_url: str, names, empty_jobs_dir: Path, tmp_path: Path
) -> None:
    env = worker_env(database_url, crash_broker, names, empty_jobs_dir)
    collector = ReplyCollector(crash_broker)
    first = WorkerProcess.run(tmp_path, env)
    second: WorkerProcess | None = None
    try:
        first.wait_for("worker ready")
        with Client(crash_broker, names=names) as client:
            for n in range(COMMANDS):
                client.send(
                    "job.create",
                    {
                        "handler": "noop",
                        "job_id": f"job-{n:04d}",
                        "periodically": "1 day",
                        "when": "2099-01-01T00:00:00Z",
                    },
                    command_id=f"cmd-{n:04d}",
                    reply_to=collector.name,
                )
        collector.until(lambda replies: len(replies) >= COMMANDS // 5, timeout=60)
        first.kill()
        applied_before = len(collector.replies)
        assert 0 < applied_before < COMMANDS, "the kill should land in the middle of the stream"
        second = WorkerProcess.run(tmp_path, env)
        second.wait_for("worker ready")
        expected = {f"cmd-{n:04d}" for n in range(COMMANDS)}
        collector.until(lambda replies: {r["command_id"] for r in replies} >= expected, timeout=150)
    finally:
        first.stop()
        if second is not None:
            second.stop()
        collector.close()

    by_command: dict[str, list[dict]] = {}
    for reply in collector.replies:
        by_command.setdefault(reply["command_id"], []).append(reply)
    assert set(by_command) == expected  # none lost
    for command_id, replies in by_command.items():
        assert all(r == replies[0] for r in replies), (
            f"{command_id} answered differently: {replies}"
        )
        assert replies[0]["ok"], replies[0]  # a second application would have said job_exists
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        jobs = connection.execute(sa.text("SELECT count(*) FROM f8a_jobs")).scalar_one()
        stored = connection.execute(
            sa.text("SELECT count(*) FROM f8a_outbox WHERE kind = 'reply'")
        ).scalar_one()
    engine.dispose()
    assert (jobs, stored) == (COMMANDS, COMMANDS)
