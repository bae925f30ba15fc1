"""`pause_after_failures`: a job that fails N times in a row is paused and says why; a success or a resume
starts the count again. Against a real RabbitMQ (the client and the events) and PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from f8a_jobs_worker.errors import ValidationFailed
from tests.helpers import eventually
from tests.messaging import EventWatcher


@pytest.fixture
def broker_url(rabbitmq_url: str) -> str:
    return rabbitmq_url


def outcomes(worker, job_id: str) -> list[str]:
    return [run["outcome"] for run in reversed(worker.service.job_history(job_id)["runs"])]


def test_a_job_is_paused_after_three_failures_and_resume_starts_the_count_again(
    messaging_worker, client, names, rabbitmq_url: str
) -> None:
    worker = messaging_worker()
    watcher = EventWatcher(rabbitmq_url, names.events, "job.*")
    try:
        job = client.call(
            "job.create",
            handler="fail",
            job_id="flaky",
            periodically="1",
            pause_after_failures=3,
        )["job"]
        assert job["pause_after_failures"] == 3
        paused = watcher.wait_for("job.paused", "flaky", timeout=20)
        assert paused[0]["reason"] == "3 consecutive failed runs (pause_after_failures)"
        assert client.call("job.get", job_id="flaky")["job"]["state"] == "paused"
        time.sleep(1.5)  # paused: no fourth run
        assert outcomes(worker, "flaky") == ["failed"] * 3

        client.call("job.resume", job_id="flaky")
        watcher.wait_for("job.paused", "flaky", timeout=20, count=2)
        assert outcomes(worker, "flaky") == ["failed"] * 6  # three more, not one
        assert [e.get("reason") for e in watcher.named("job.paused", "flaky")] == [
            "3 consecutive failed runs (pause_after_failures)"
        ] * 2
    finally:
        watcher.close()


def test_a_success_starts_the_count_again(make_worker, tmp_path: Path) -> None:
    """`sleep` with a path fails while the path is a directory and succeeds once it is not; each run is
    started with run_now, so the sequence is exact: x x . x x -> still running; x -> paused."""
    worker = make_worker()
    target = tmp_path / "out"
    worker.service.create_job(
        "sleep",
        {"seconds": 0, "path": str(target)},
        job_id="wobbly",
        periodically="1 day",
        when="2099-01-01T00:00:00Z",
        pause_after_failures=3,
    )

    def run(expected: str) -> None:
        before = len(outcomes(worker, "wobbly"))
        worker.service.run_job_now("wobbly")
        eventually(lambda: len(outcomes(worker, "wobbly")) == before + 1, timeout=10)
        assert outcomes(worker, "wobbly")[-1] == expected

    target.mkdir()  # appending to a directory fails
    run("failed")
    run("failed")
    target.rmdir()
    run("executed")
    target.unlink()
    target.mkdir()
    run("failed")
    run("failed")
    assert worker.service.get_job("wobbly")["job"]["state"] == "running"
    run("failed")
    eventually(lambda: worker.service.get_job("wobbly")["job"]["state"] == "paused", timeout=10)
    assert outcomes(worker, "wobbly") == ["failed", "failed", "executed"] + ["failed"] * 3


def test_pause_after_failures_is_checked(make_worker, tmp_path: Path) -> None:
    worker = make_worker()
    for bad in (0, 1001, "3", True, 2.5):
        with pytest.raises(ValidationFailed):
            worker.service.create_job("noop", pause_after_failures=bad)
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "watch.yaml").write_text(
        "job_id: watch\nhandler: fail\nperiodically: 1 hour\npause_after_failures: 2\n"
    )
    loaded = make_worker(default_jobs_dir=tmp_path / "jobs")
    assert loaded.service.get_job("watch")["job"]["pause_after_failures"] == 2
