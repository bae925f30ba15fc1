"""Failure records, run history and its retention, against PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from f8a_jobs_worker.events import Event
from f8a_jobs_worker.operations.metrics import Metrics
from f8a_jobs_worker.persistence.job_repository import JobRepository
from f8a_jobs_worker.persistence.ledger import LedgerEntry, RunLedger
from f8a_jobs_worker.persistence.runs import RunRecord, RunStore
from f8a_jobs_worker.persistence.tables import job_runs
from f8a_jobs_worker.persistence.unit_of_work import Transactions
from f8a_jobs_worker.scheduling.outcomes import Outcome, Outcomes
from tests.helpers import eventually, records, sink_of


def entry_of(run: RunRecord) -> LedgerEntry:
    """The ledger entry a run would have had (outcomes end it; none is stored here)."""
    assert run.scheduled_at is not None
    return LedgerEntry.new(run.job_id, run.handler, {}, run.scheduled_at, "report")


def outcomes_on(engine: sa.Engine) -> Outcomes:
    return Outcomes(Transactions(engine), RunStore(), JobRepository(), RunLedger("r"), Metrics())


def test_failed_run_is_recorded_with_traceback_and_event(make_worker) -> None:
    worker = make_worker()
    worker.service.create_job("fail", {"message": "disk on fire"}, job_id="bad")
    failed = sink_of(worker).wait_for("job.failed", "bad")[0].to_dict()
    listed = worker.service.list_jobs("failed")
    assert listed["jobs_count"] == 1
    failure = listed["jobs"][0]
    assert failure["job_id"] == failed["failure_id"]
    assert failure["failed_job_id"] == "bad"
    assert failure["handler"] == "fail"
    assert failure["kwargs"] == {"message": "disk on fire"}
    assert failure["error"] == "RuntimeError: disk on fire"
    assert "raise RuntimeError(message)" in failure["traceback"]
    assert failed["error"] == "RuntimeError: disk on fire"
    assert failed["traceback"] == failure["traceback"]
    history = worker.service.job_history("bad")["runs"]
    assert [(r["outcome"], r["failure_id"]) for r in history] == [("failed", failure["job_id"])]


def test_failing_periodic_job_keeps_its_schedule(make_worker) -> None:
    worker = make_worker()
    worker.service.create_job("fail", job_id="flaky", periodically="1 hour")
    sink_of(worker).wait_for("job.failed", "flaky")
    view = worker.service.get_job("flaky")["job"]
    assert view["state"] == "running"
    next_run = datetime.fromisoformat(view["next_run_time"])
    assert timedelta(minutes=59) < next_run - datetime.now(UTC) <= timedelta(hours=1)
    worker.service.run_job_now("flaky")
    sink_of(worker).wait_for("job.failed", "flaky", count=2)
    assert worker.service.list_jobs("failed")["jobs_count"] == 2
    assert worker.service.get_job("flaky")["job"]["next_run_time"] == view["next_run_time"]


def test_clean_failed_removes_every_failure_record(make_worker) -> None:
    worker = make_worker()
    worker.service.create_job("fail", job_id="a")
    worker.service.create_job("fail", job_id="b")
    events = sink_of(worker)
    events.wait_for("job.failed", "a")
    events.wait_for("job.failed", "b")
    ids = {e.fields["failure_id"] for e in events.events if e.name == "job.failed"}
    assert set(worker.service.clean_failed()["removed"]) == ids
    assert worker.service.list_jobs("failed") == {"jobs": [], "jobs_count": 0}
    assert worker.service.clean_failed() == {"removed": []}
    # the run history still tells that the runs failed
    assert worker.service.job_history("a")["runs"][0]["outcome"] == "failed"


def test_history_keeps_duration_and_summary_newest_first(make_worker, tmp_path: Path) -> None:
    worker = make_worker()
    out = tmp_path / "runs.jsonl"
    worker.service.create_job(
        "record", {"path": str(out), "value": 1}, job_id="r", periodically="1 day"
    )
    sink_of(worker).wait_for("job.executed", "r")
    worker.service.run_job_now("r")
    sink_of(worker).wait_for("job.executed", "r", count=2)
    runs = eventually(
        lambda: (
            len(worker.service.job_history("r")["runs"]) == 2
            and worker.service.job_history("r")["runs"]
        )
    )
    assert [r["outcome"] for r in runs] == ["executed", "executed"]
    assert all(r["summary"] == {"written": 1} for r in runs)
    assert all(r["duration_s"] is not None and r["duration_s"] >= 0 for r in runs)
    assert runs[0]["finished_at"] >= runs[1]["finished_at"]
    executed = sink_of(worker).wait_for("job.executed", "r")[0].to_dict()
    assert executed["summary"] == {"written": 1}
    assert executed["duration_s"] >= 0
    assert len(records(out)) == 2


def test_history_retention_by_count_and_age(make_worker) -> None:
    worker = make_worker(start=False)
    from f8a_jobs_worker.persistence import schema

    schema.upgrade(worker.engine)
    now = datetime.now(UTC)

    def record(run: RunRecord) -> None:
        done: list[bool] = []
        event = Event("job.executed", run.job_id)
        worker.outcomes.finish_nowait(Outcome(entry_of(run), run, lambda _: event), done.append)
        eventually(lambda: done == [True])

    for n in range(8):
        record(RunRecord("many", "noop", "executed", now, now, now - timedelta(minutes=7 - n)))
    record(RunRecord("old", "noop", "executed", now, now, now - timedelta(days=40)))
    record(RunRecord("fresh", "noop", "missed", now, finished_at=now))
    with worker.transactions.begin() as uow:
        removed = worker.runs.prune(uow, timedelta(days=30), per_job=5)
    assert removed == 4
    with worker.engine.connect() as connection:
        counts = dict(
            connection.execute(
                sa.select(job_runs.c.job_id, sa.func.count()).group_by(job_runs.c.job_id)
            ).all()
        )
    assert counts == {"many": 5, "fresh": 1}
    kept = worker.service.job_history("many")["runs"]
    expected = [(now - timedelta(minutes=minutes)).isoformat() for minutes in range(5)]
    assert [r["finished_at"] for r in kept] == expected
    worker.engine.dispose()


def test_outcomes_handed_over_are_written_in_batches_larger_than_the_threads(
    database_url: str,
) -> None:
    """finish_nowait: four threads hand over 400 outcomes without waiting for them; every one is recorded
    with its event and its callback called once, in far fewer commits than records; then one that cannot
    be stored fails alone (its callback gets False), the others handed over with it are recorded."""
    from collections import Counter

    from f8a_jobs_worker.persistence import schema
    from f8a_jobs_worker.persistence.database import create_engine
    from f8a_jobs_worker.persistence.tables import outbox

    engine = create_engine(database_url)
    schema.upgrade(engine)
    store = outcomes_on(engine)
    now = datetime.now(UTC)
    commits = Counter[int]()
    sa.event.listen(engine, "commit", lambda conn: commits.update([1]))
    called: dict[str, bool] = {}
    lock = threading.Lock()

    def hand_over(thread: int) -> None:
        for n in range(100):
            job_id = f"t{thread}-{n}"
            summary = {"bad": object()} if job_id == "t9-50" else {"n": n}
            run = RunRecord(job_id, "noop", "executed", now, now, now, summary=summary)

            def recorded(done: bool, job_id: str = job_id) -> None:
                with lock:
                    assert job_id not in called
                    called[job_id] = done

            event = Event("job.executed", job_id)
            store.finish_nowait(Outcome(entry_of(run), run, lambda _, e=event: e), recorded)

    def run_threads(numbers: range, expected: int) -> None:
        threads = [threading.Thread(target=hand_over, args=(t,)) for t in numbers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        deadline = time.monotonic() + 30
        while len(called) < expected and time.monotonic() < deadline:
            time.sleep(0.05)

    run_threads(range(4), 400)
    assert len(called) == 400 and all(called.values())
    assert commits[1] < 200  # shared commits; a thread never waited for its own
    run_threads(range(9, 10), 500)  # t9-50 cannot be stored
    with engine.connect() as connection:
        runs = connection.execute(sa.select(job_runs.c.job_id)).scalars().all()
        events = connection.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one()
    engine.dispose()
    assert len(called) == 500
    assert called.pop("t9-50") is False
    assert all(called.values())
    assert sorted(runs) == sorted(called)
    assert events == 499


def test_outcomes_handed_over_while_the_store_is_down_are_written_when_it_returns(
    own_role,
) -> None:
    """The thread that writes waits for the store (the others queue); nothing is lost."""
    from f8a_jobs_worker.persistence import schema
    from f8a_jobs_worker.persistence.database import create_engine

    url, role, sql = own_role
    engine = create_engine(url)
    schema.upgrade(engine)
    store = outcomes_on(engine)
    now = datetime.now(UTC)
    called: list[bool] = []
    sql(f'ALTER ROLE "{role}" NOLOGIN')
    sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'")
    try:
        for n in range(3):
            run = RunRecord(f"down-{n}", "noop", "executed", now, now, now)
            event = Event("job.executed", run.job_id)
            outcome = Outcome(entry_of(run), run, lambda _, e=event: e)
            threading.Thread(target=store.finish_nowait, args=(outcome, called.append)).start()
        time.sleep(2)
        assert called == []  # held, not dropped
    finally:
        sql(f'ALTER ROLE "{role}" LOGIN')
    deadline = time.monotonic() + 30
    while len(called) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    with engine.connect() as connection:
        runs = connection.execute(sa.select(job_runs.c.job_id)).scalars().all()
    store.stopping.set()
    engine.dispose()
    assert sorted(runs) == ["down-0", "down-1", "down-2"]
    assert called == [True, True, True]
