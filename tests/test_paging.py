"""Keyset paging of job.list (jobs and failures) and job.history: ``after`` the previous page's ``next``."""

from __future__ import annotations

import random
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bench.jobfill import fill_worker_store
from f8a_jobs_worker.errors import ValidationFailed
from f8a_jobs_worker.persistence import schema
from f8a_jobs_worker.persistence.tables import job_failures, job_runs
from f8a_jobs_worker.scheduling.default_jobs import apply_default_jobs
from f8a_jobs_worker.validation import file_validator
from tests.helpers import eventually

LATER = datetime(2999, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["postgresql", "sqlite"])
def worker(request: pytest.FixtureRequest, make_worker: Any, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        return make_worker(database_url=f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    return make_worker()


def every_page(worker: Any, limit: int, **args: Any) -> list[str]:
    seen: list[str] = []
    after = None
    while True:
        page = worker.service.list_jobs(limit=limit, after=after, **args)
        seen += [job["job_id"] for job in page["jobs"]]
        after = page.get("next")
        if after is None:
            return seen


def test_paging_ten_thousand_jobs_returns_each_once_in_order(worker: Any) -> None:
    fill_worker_store(worker.engine, [LATER] * 10_000, "job")
    seen = every_page(worker, 1000)
    assert len(seen) == 10_000
    assert seen == sorted(seen) and len(set(seen)) == 10_000
    first = worker.service.list_jobs(limit=1000)
    assert first["jobs_count"] == 10_000 and first["next"] == seen[999]
    last = worker.service.list_jobs(limit=1000, after=seen[-1000 - 1])
    assert len(last["jobs"]) == 1000 and "next" not in last


def test_paging_while_jobs_come_and_go_skips_none_that_stayed(worker: Any) -> None:
    """Jobs created and deleted while a client pages: every job that existed throughout is returned
    exactly once, in order."""
    fill_worker_store(worker.engine, [LATER] * 3000, "stay")
    fill_worker_store(worker.engine, [LATER] * 500, "go")
    stop = threading.Event()

    def churn() -> None:
        rng = random.Random(7)
        going = [f"go-{n}" for n in range(500)]
        rng.shuffle(going)
        while not stop.is_set() and going:
            worker.service.delete_job(going.pop())
            worker.service.create_job(
                "noop", job_id=f"new-{uuid.uuid4().hex[:8]}", when=LATER.isoformat()
            )

    thread = threading.Thread(target=churn)
    thread.start()
    try:
        seen = every_page(worker, 100)
    finally:
        stop.set()
        thread.join()
    stayed = [job_id for job_id in seen if job_id.startswith("stay-")]
    assert sorted(stayed) == sorted(f"stay-{n}" for n in range(3000))
    assert len(seen) == len(set(seen)) and seen == sorted(seen)


def test_failures_and_history_page_by_key(worker: Any) -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    with worker.engine.begin() as connection:
        connection.execute(
            job_failures.insert(),
            [
                {
                    "failure_id": f"f-{n:03d}",
                    "failed_job_id": "j",
                    "handler": "fail",
                    "kwargs": {},
                    "error": "boom",
                    "failed_at": at + timedelta(seconds=n // 3),  # ties within each second
                }
                for n in range(25)
            ],
        )
        connection.execute(
            job_runs.insert(),
            [
                {
                    "job_id": "j",
                    "handler": "noop",
                    "outcome": "executed",
                    "scheduled_at": at + timedelta(minutes=n),
                    "finished_at": at + timedelta(minutes=n),
                }
                for n in range(25)
            ],
        )
    failed = every_page(worker, 4, job_type="failed")
    assert failed == [f"f-{n:03d}" for n in range(25)]
    runs, after = [], None
    while True:
        page = worker.service.job_history("j", limit=4, after=after)
        runs += [run["scheduled_at"] for run in page["runs"]]
        after = page.get("next")
        if after is None:
            break
    assert runs == [(at + timedelta(minutes=n)).isoformat() for n in reversed(range(25))]


def test_keys_that_no_listing_gave_are_validation_errors(worker: Any) -> None:
    with pytest.raises(ValidationFailed):
        worker.service.job_history("j", after="yesterday")
    with pytest.raises(ValidationFailed):
        worker.service.list_jobs(job_type="failed", after="not-a-time f-1")
    both = list(file_validator("commands/job.list.json").iter_errors({"after": "a", "offset": 0}))
    assert both, "after and offset together are refused by the schema"


def test_counts_stay_exact_without_a_scan(worker: Any, tmp_path: Path) -> None:
    """jobs_count comes from counters kept by triggers: exact after creates, deletes, one-shot jobs removed
    by the scheduler, failures, default jobs, a bulk load and cleaning failures."""

    def count(job_type: str) -> int:
        return int(worker.service.list_jobs(job_type=job_type, limit=0)["jobs_count"])

    def scanned() -> dict[str, int]:
        with worker.engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT is_default, count(*) FROM f8a_jobs GROUP BY is_default")
            ).all()
            failures = connection.execute(sa.text("SELECT count(*) FROM f8a_job_failures")).scalar()
        found = {bool(d): n for d, n in rows}
        return {
            "user": found.get(False, 0),
            "default": found.get(True, 0),
            "all": sum(found.values()),
            "failed": int(failures or 0),
        }

    def exact() -> None:
        assert {t: count(t) for t in ("all", "user", "default", "failed")} == scanned()

    fill_worker_store(worker.engine, [LATER] * 1000, "bulk")
    exact()
    for n in range(20):
        worker.service.create_job("noop", job_id=f"c{n}", when=LATER.isoformat())
    for n in range(5):
        worker.service.delete_job(f"c{n}")
    worker.service.create_job("fail", job_id="fails")  # runs at once: a failure record, job removed
    worker.service.create_job("noop", job_id="once")  # runs at once and is removed by the pass
    eventually(lambda: scanned()["failed"] == 1 and count("all") == scanned()["all"])
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "d.yaml").write_text("job_id: d\nhandler: noop\nperiodically: 1 hour\n")
    apply_default_jobs(worker.service, tmp_path / "jobs")
    exact()
    assert count("default") == 1 and count("failed") == 1
    worker.service.clean_failed()
    exact()
    assert count("user") == 1000 + 15
    worker.service.create_job("noop", job_id="d", replace=True, when=LATER.isoformat())
    exact()  # the default job became a user job
    assert (count("default"), count("user")) == (0, 1000 + 16)


def test_counters_start_from_the_rows_of_an_older_table(worker: Any) -> None:
    """A store made by a release without counters (nor schema versions): its upgrade installs them and
    counts what is there."""
    fill_worker_store(worker.engine, [LATER] * 300, "old")
    with worker.engine.begin() as connection:
        connection.execute(
            sa.text("DROP TRIGGER f8a_jobs_count_insert ON f8a_jobs")
            if connection.dialect.name == "postgresql"
            else sa.text("DROP TRIGGER f8a_jobs_count_insert")
        )
        connection.execute(sa.text("DELETE FROM f8a_counts"))
        connection.execute(sa.text(f"DROP TABLE {schema.VERSION_TABLE}"))
    fill_worker_store(worker.engine, [LATER] * 200, "older")  # upgrades (the trigger), then inserts
    assert worker.service.list_jobs(limit=0)["jobs_count"] == 500


def test_limits_written_as_whole_floats_page_too(worker: Any) -> None:
    """JSON Schema's integers include 1.0, so the schema lets ``"limit": 2.0`` through."""
    for n in range(3):
        worker.service.create_job("noop", job_id=f"f{n}", when=LATER.isoformat())
    page = worker.service.list_jobs(limit=2.0, offset=0.0)  # type: ignore[arg-type]
    assert [job["job_id"] for job in page["jobs"]] == ["f0", "f1"] and page["next"] == "f1"
    assert worker.service.list_jobs(job_type="failed", limit=2.0)["jobs"] == []  # type: ignore[arg-type]
    assert worker.service.job_history("f0", limit=2.0)["runs"] == []  # type: ignore[arg-type]
    assert not list(file_validator("commands/job.list.json").iter_errors({"limit": 2.0}))


def test_a_page_read_again_shows_every_change_made_since(worker: Any) -> None:
    """Pages read again reuse the jobs and views of the jobs that did not change; each change shows at
    once: a pause, a resume, a replace with new arguments, a delete, a job added."""
    when = LATER.isoformat()
    for job_id in ("a", "b", "c"):
        worker.service.create_job(
            "noop", {"message": "one"}, job_id=job_id, periodically="1 day", when=when
        )

    def page() -> dict[str, dict[str, Any]]:
        return {job["job_id"]: job for job in worker.service.list_jobs(limit=10)["jobs"]}

    first = page()
    assert page() == first
    worker.service.pause_job("b")
    worker.service.create_job(
        "noop", {"message": "two"}, job_id="c", periodically="1 day", when=when, replace=True
    )
    second = page()
    assert second["a"] == first["a"]
    assert second["b"]["state"] == "paused" and first["b"]["state"] == "running"
    assert second["c"]["kwargs"] == {"message": "two"}
    worker.service.resume_job("b")
    worker.service.delete_job("a")
    worker.service.create_job("noop", job_id="d", periodically="1 day", when=when)
    third = page()
    assert sorted(third) == ["b", "c", "d"]
    assert third["b"]["state"] == "running"
    assert (
        third["b"] == worker.service.get_job("b")["job"]
    )  # job.get restores without the page's caches
