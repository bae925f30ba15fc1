"""job.backfill: every run a schedule had in a past window, in order, at most N at a time, each with its own
history entry and event; windows over the bound refused. Real PostgreSQL (and RabbitMQ for the command)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from f8a_jobs_worker.errors import JobNotFound, ValidationFailed
from tests.helpers import delivered, eventually, records


def test_a_daily_job_backfilled_over_30_days_runs_30_runs_in_order(
    make_worker, tmp_path: Path
) -> None:
    worker = make_worker()
    path = tmp_path / "runs.jsonl"
    worker.service.create_job(
        "record", {"path": str(path)}, job_id="daily", periodically="1 day", state="paused"
    )
    now = datetime.now(UTC)
    result = worker.service.backfill_job(
        "daily", (now - timedelta(days=30)).isoformat(), now.isoformat()
    )
    assert result["runs"] == 30 and result["backfill_id"]
    eventually(lambda: len(records(path)) >= 30, timeout=30)
    lines = records(path)
    scheduled = [datetime.fromisoformat(line["scheduled_at"]) for line in lines]
    assert scheduled == sorted(scheduled)  # one at a time, in order
    assert [b - a for a, b in itertools.pairwise(scheduled)] == [timedelta(days=1)] * 29
    assert scheduled[0].isoformat() == result["first"]
    assert scheduled[-1].isoformat() == result["last"]
    # its own history entries and events; the job itself stays paused

    def executed() -> list[dict]:
        runs = worker.service.job_history("daily", limit=100)["runs"]
        return [r for r in runs if r["outcome"] == "executed"]

    history = eventually(lambda: (found := executed()) and len(found) == 30 and found, timeout=10)
    assert sorted(r["scheduled_at"] for r in history) == [s.isoformat() for s in scheduled]
    eventually(lambda: delivered(worker).names("daily").count("job.executed") == 30)
    assert worker.service.get_job("daily")["job"]["state"] == "paused"
    # done: the backfill is removed
    eventually(lambda: worker.backfill.step() == 0 and not _stored(worker), timeout=10)


def _stored(worker) -> bool:
    from f8a_jobs_worker.persistence.tables import backfills

    with worker.transactions.begin() as uow:
        return bool(uow.connection.execute(backfills.select()).first())


def test_at_most_n_at_a_time_started_in_order(make_worker, tmp_path: Path) -> None:
    worker = make_worker(threads=8)
    path = tmp_path / "slept.jsonl"
    worker.service.create_job(
        "sleep",
        {"seconds": 0.5, "path": str(path)},
        job_id="hourly",
        periodically="1 hour",
        state="paused",
    )
    now = datetime.now(UTC)
    worker.service.backfill_job(
        "hourly", (now - timedelta(hours=9)).isoformat(), now.isoformat(), concurrency=3
    )
    eventually(lambda: len(records(path)) == 9, timeout=30)
    history = [
        r
        for r in worker.service.job_history("hourly", limit=100)["runs"]
        if r["outcome"] == "executed"
    ]
    spans = sorted(
        (datetime.fromisoformat(r["started_at"]), datetime.fromisoformat(r["finished_at"]), r)
        for r in history
    )
    # started in the order of their scheduled times
    assert [r["scheduled_at"] for _, _, r in spans] == sorted(r["scheduled_at"] for r in history)
    peak = max(sum(1 for s, f, _ in spans if s <= start < f) for start, _, _ in spans)
    assert 2 <= peak <= 3


def test_backfill_bounds(make_worker) -> None:
    worker = make_worker()
    worker.service.create_job("noop", job_id="often", periodically="1 minute", state="paused")
    now = datetime.now(UTC)
    with pytest.raises(ValidationFailed, match="more than 1000 runs"):
        worker.service.backfill_job("often", (now - timedelta(days=1)).isoformat(), now.isoformat())
    with pytest.raises(ValidationFailed, match="future"):
        worker.service.backfill_job(
            "often", now.isoformat(), (now + timedelta(hours=1)).isoformat()
        )
    with pytest.raises(ValidationFailed, match="before end"):
        worker.service.backfill_job("often", now.isoformat(), now.isoformat())
    with pytest.raises(ValidationFailed, match="concurrency"):
        worker.service.backfill_job(
            "often", (now - timedelta(hours=1)).isoformat(), now.isoformat(), concurrency=0
        )
    with pytest.raises(JobNotFound):
        worker.service.backfill_job("nope", (now - timedelta(hours=1)).isoformat(), now.isoformat())
    empty = worker.service.backfill_job(
        "often",
        (now - timedelta(seconds=30)).isoformat(),
        (now - timedelta(seconds=29)).isoformat(),
    )
    assert empty["runs"] in (0, 1)
