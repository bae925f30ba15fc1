"""The worker as a real process: the embedded default, SIGTERM, kill -9, retries and what reaches the logs."""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.helpers import eventually, records
from tests.messaging import body_of, read_queue
from tests.process import WorkerProcess, clean_env

pytestmark = pytest.mark.slow


@pytest.fixture
def processes() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for process in started:
        process.stop()


def test_embedded_default_runs_until_sigterm(tmp_path: Path, processes) -> None:
    """No setting at all: SQLite in the working directory, the shipped default jobs, a clean exit."""
    worker = WorkerProcess.run(tmp_path, clean_env())
    processes.append(worker)
    worker.wait_for("worker ready")
    worker.wait_for("job heartbeat (noop) executed")
    assert (tmp_path / "f8a-jobs.sqlite").exists()
    # the events went to the embedded broker, readable from this other process
    events = read_queue(f"filesystem://{tmp_path / 'f8a-jobs-broker'}", "f8a_jobs_events", 3)
    assert {json.loads(body_of(e))["event"] for e in events} == {"job.created", "job.executed"}
    assert "default jobs from" in worker.output and "2 added" in worker.output
    time.sleep(1.0)
    assert worker.proc.poll() is None  # keeps running
    assert worker.terminate() == 0
    assert "SIGTERM received: shutting down" in worker.output
    assert worker.output.rstrip().endswith("stopped")


DRIVER = """
import sys, time
from pathlib import Path
from datetime import UTC, datetime, timedelta
from f8a_jobs_worker.config import Settings
from f8a_jobs_worker.worker import Worker

worker = Worker(Settings(database_url=sys.argv[1], default_jobs_dir=Path(sys.argv[2])))
worker.start()
when = (datetime.now(UTC) + timedelta(seconds=float(sys.argv[4]))).isoformat()
worker.service.create_job("record", {"path": sys.argv[3], "value": "once"}, job_id="survivor", when=when)
worker.service.create_job("record", {"path": sys.argv[3], "value": "hourly"}, job_id="hourly",
                          periodically="1 hour", when=when)
print("created", flush=True)
time.sleep(3600)
"""


@pytest.mark.parametrize("store", ["postgresql", "sqlite"])
def test_job_created_through_the_facade_survives_kill_9(
    store: str, request, empty_jobs_dir: Path, tmp_path: Path, processes
) -> None:
    if store == "postgresql":
        database_url = request.getfixturevalue("database_url")
    else:
        database_url = f"sqlite:///{tmp_path / 'jobs.sqlite'}"
    out = tmp_path / "runs.jsonl"
    env = clean_env(
        F8A_JOBS_DATABASE_URL=database_url, F8A_JOBS_DEFAULT_JOBS_DIR=str(empty_jobs_dir)
    )
    creator = WorkerProcess(
        [sys.executable, "-c", DRIVER, database_url, str(empty_jobs_dir), str(out), "3"],
        tmp_path,
        env,
        name="creator",
    )
    processes.append(creator)
    creator.wait_for("created")
    creator.kill()
    time.sleep(3.5)
    assert records(out) == []  # due while nothing ran
    restarted = WorkerProcess.run(tmp_path, env)
    processes.append(restarted)
    ran = eventually(lambda: len(records(out)) == 2 and records(out), timeout=30)
    assert sorted(r["value"] for r in ran) == ["hourly", "once"]
    assert restarted.terminate() == 0
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        stored = connection.execute(sa.text("SELECT id FROM f8a_jobs ORDER BY id")).scalars().all()
        runs = connection.execute(
            sa.text("SELECT job_id, outcome FROM f8a_job_runs ORDER BY job_id")
        ).all()
    engine.dispose()
    assert stored == ["hourly"]  # the one-shot job is done, the periodic one stays
    assert [tuple(r) for r in runs] == [("hourly", "executed"), ("survivor", "executed")]


def test_credentials_never_reach_the_logs(
    pg_admin_url: str, tmp_path: Path, empty_jobs_dir: Path, processes
) -> None:
    # The local server trusts 127.0.0.1, so any password connects; what matters is that none is logged.
    url = sa.make_url(pg_admin_url).set(password="s3cr3t-Pa55")
    secret_url = url.render_as_string(hide_password=False)
    env = clean_env(
        F8A_JOBS_DEFAULT_JOBS_DIR=str(empty_jobs_dir),
        F8A_JOBS_BROKER_URL="amqp://guest:br0ker-Pa55@127.0.0.1:5672//",
    )
    worker = WorkerProcess.run(tmp_path, env, "--database-url", secret_url, "--no-default-jobs")
    processes.append(worker)
    worker.wait_for("worker ready")
    assert worker.terminate() == 0
    assert "s3cr3t-Pa55" not in worker.output
    assert "br0ker-Pa55" not in worker.output
    assert "postgres:***@127.0.0.1" in worker.output


def test_job_store_down_means_retry_not_exit(
    tmp_path: Path, empty_jobs_dir: Path, processes
) -> None:
    env = clean_env(
        F8A_JOBS_DATABASE_URL="postgresql://postgres:pw@127.0.0.1:1/none",
        F8A_JOBS_DEFAULT_JOBS_DIR=str(empty_jobs_dir),
        F8A_JOBS_LOG_LEVEL="DEBUG",
    )
    worker = WorkerProcess.run(tmp_path, env)
    processes.append(worker)
    worker.wait_for("job store unavailable")
    deadline = time.monotonic() + 30
    while worker.output.count("job store unavailable") < 4 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert worker.output.count("WARNING f8a_jobs_worker.cli: job store unavailable") == 1
    assert worker.output.count("job store unavailable") >= 4  # probed again, quietly
    assert worker.proc.poll() is None
    assert worker.terminate() == 69


def test_misspelt_setting_is_an_error(tmp_path: Path, processes) -> None:
    env = clean_env(F8A_JOBS_DATABSE_URL="postgresql://elsewhere/db")
    worker = WorkerProcess.run(tmp_path, env)
    processes.append(worker)
    assert worker.wait(30) == 78
    assert (
        "unknown setting F8A_JOBS_DATABSE_URL (did you mean F8A_JOBS_DATABASE_URL?)"
        in worker.output
    )


def test_a_url_that_cannot_work_stops_the_start_with_one_line(tmp_path: Path, processes) -> None:
    env = clean_env(F8A_JOBS_DATABASE_URL="postgresql+nosuchdriver://u:s3cret@db/jobs")
    worker = WorkerProcess.run(tmp_path, env)
    processes.append(worker)
    assert worker.wait(30) == 78
    assert worker.output.strip().splitlines() == [
        "error: F8A_JOBS_DATABASE_URL postgresql+nosuchdriver://u:***@db/jobs: unsupported database "
        "'postgresql+nosuchdriver'; expected postgresql://user:password@host:5432/database or "
        "sqlite:///path/to/file.sqlite"
    ]


def test_a_second_sigterm_exits_at_once_and_says_so(tmp_path: Path, processes) -> None:
    """The first SIGTERM waits for the running handler; a second one exits without waiting, and its log line
    (queued for the writing thread) is written before the process ends."""
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "long.yaml").write_text(
        "job_id: long\nhandler: sleep\nkwargs:\n  seconds: 600\nperiodically: 1 day\n"
    )
    worker = WorkerProcess.run(tmp_path, clean_env(F8A_JOBS_DEFAULT_JOBS_DIR=str(jobs)))
    processes.append(worker)
    worker.wait_for("worker ready")
    worker.proc.send_signal(signal.SIGTERM)
    worker.wait_for("stopping: waiting for running jobs")
    assert worker.terminate() == 128 + signal.SIGTERM
    assert worker.output.rstrip().endswith("SIGTERM again: exiting now without waiting")
