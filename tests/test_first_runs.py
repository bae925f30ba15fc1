"""A running periodic job created without ``when`` runs at once: its first run is entered with the create and
started once it commits, alone or in a run of creates applied together; never while the scheduler is paused."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from f8a_jobs_worker.client import Client
from tests.helpers import eventually, records
from tests.test_batches import first_batch
from tests.test_delivery import query

rabbitmq_only = pytest.mark.parametrize("broker_url", ["rabbitmq"], indirect=True)


def _hourly(job_id: str, out: Path) -> tuple[str, dict[str, object]]:
    args = {"handler": "record", "kwargs": {"path": str(out)}, "job_id": job_id}
    return "job.create", args | {"periodically": "1 hour"}


@rabbitmq_only
def test_each_created_job_runs_once_at_once_and_shows_its_second_run(
    messaging_worker, client: Client, broker_url: str, database_url: str, tmp_path: Path
) -> None:
    """Twenty creates queued before the worker consumes (applied together) and one sent alone: each reply
    shows the run an hour on, each job ran exactly once, and the stored rows say the same as the replies."""
    out = tmp_path / "runs.jsonl"
    worker = messaging_worker(start=False)
    before = datetime.now(UTC)
    commands = [_hourly(f"batch-{n:02d}", out) for n in range(20)]
    _ids, replies = first_batch(worker, client, broker_url, commands)
    alone = client.call(*_hourly("alone", out))["job"]
    views = [r["result"]["job"] for r in replies] + [alone]
    assert len(views) == 21
    for view in views:
        next_run = datetime.fromisoformat(view["next_run_time"])
        assert before + timedelta(minutes=59) < next_run < datetime.now(UTC) + timedelta(hours=1)
    eventually(lambda: len(records(out)) >= 21)
    time.sleep(0.5)  # a run fired twice would show by now
    ran = Counter(r["job_id"] for r in records(out))
    assert ran == Counter({view["job_id"]: 1 for view in views})
    stored = dict(query(database_url, "SELECT id, next_run_time FROM f8a_jobs"))  # epoch seconds
    assert {
        job_id: datetime.fromtimestamp(at, UTC).isoformat() for job_id, at in stored.items()
    } == {view["job_id"]: view["next_run_time"] for view in views}
    history = query(database_url, "SELECT outcome, started_by FROM f8a_job_runs")
    assert Counter(outcome for outcome, _ in history) == Counter({"executed": 21})
    assert {started_by for _, started_by in history} == {None}  # the schedule's own runs
    eventually(lambda: not query(database_url, "SELECT 1 FROM f8a_run_ledger"))


@rabbitmq_only
def test_no_run_starts_with_a_create_while_the_scheduler_is_paused(
    messaging_worker, client: Client, tmp_path: Path
) -> None:
    """Paused, a create only stores the job, due now; resumed, the job runs once."""
    out = tmp_path / "runs.jsonl"
    messaging_worker()
    assert client.call("scheduler.pause") == {"state": "paused"}
    created = datetime.now(UTC)
    view = client.call(*_hourly("waits", out))["job"]
    assert datetime.fromisoformat(view["next_run_time"]) < created + timedelta(minutes=1)
    time.sleep(1.0)
    assert records(out) == []
    client.call("scheduler.resume")
    eventually(lambda: len(records(out)) == 1)
    shown = client.call("job.get", job_id="waits")["job"]
    assert datetime.fromisoformat(shown["next_run_time"]) > created + timedelta(minutes=59)
