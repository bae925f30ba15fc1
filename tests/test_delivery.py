"""Nothing lost, nothing doubled: the unit of work, the outbox and the run ledger under faults.

Real RabbitMQ and PostgreSQL; worker processes where a process is killed; a TCP fault proxy for the broker.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from f8a_jobs_worker.client import Client
from tests.faults import FaultProxy
from tests.helpers import eventually, records, sink_of
from tests.messaging import EventWatcher, ReplyCollector
from tests.process import WorkerProcess, worker_env
from tests.test_batches import LATER, first_batch, refuse

rabbitmq_only = pytest.mark.parametrize("broker_url", ["rabbitmq"], indirect=True)


def query(database_url: str, sql: str, **params: Any) -> list[Any]:
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(sa.text(sql), params).all()
    engine.dispose()
    return rows


def outbox_empty(database_url: str) -> bool:
    return not query(database_url, "SELECT 1 FROM f8a_outbox WHERE published_at IS NULL LIMIT 1")


@rabbitmq_only
def test_run_now_in_a_batch_that_fails_as_a_whole_runs_once(
    messaging_worker, client: Client, broker_url: str, database_url: str, tmp_path: Path
) -> None:
    """The batch's outbox write fails, so the batch is rolled back and applied again one by one: the run
    that ``job.run_now`` decided in the failed batch never started, the one of the re-applied command did."""
    out = tmp_path / "runs.jsonl"
    worker = messaging_worker(start=False)
    commands = [
        (
            "job.create",
            {"handler": "record", "kwargs": {"path": str(out)}, "job_id": "r", "when": LATER},
        ),
        ("job.run_now", {"job_id": "r"}),
        ("job.create", {"handler": "noop", "job_id": "refused", "when": LATER}),
    ]
    ids, received = first_batch(
        worker,
        client,
        broker_url,
        commands,
        lambda ids: refuse(database_url, "f8a_outbox", "command_id", ids[2]),
    )
    replies = {reply["command_id"]: reply for reply in received}
    assert replies[ids[0]]["ok"] and replies[ids[1]]["ok"]
    assert replies[ids[2]]["error"]["code"] == "internal_error"
    sink_of(worker).wait_for("job.executed", "r")
    time.sleep(1.0)
    assert len(records(out)) == 1  # once, not once per application of the batch
    assert [r["outcome"] for r in worker.service.job_history("r")["runs"]] == ["executed"]


@rabbitmq_only
def test_read_only_commands_do_not_hold_up_firing(
    messaging_worker, client: Client, monkeypatch
) -> None:
    """Five 3-second filter.expand commands (slowed down here) while a job fires every second: the firings
    go on meanwhile, since read-only commands take no job-store lock. The lateness is printed."""
    worker = messaging_worker()
    slow = worker.filters.expand

    def expand(*args: Any, **kwargs: Any) -> dict[str, Any]:
        time.sleep(3)
        return slow(*args, **kwargs)

    monkeypatch.setattr(worker.filters, "expand", expand)
    client.call("job.create", handler="noop", job_id="tick", periodically="1")
    sink_of(worker).wait_for("job.executed", "tick")
    started = datetime.now(UTC)
    for _ in range(5):
        client.send("filter.expand", {"$filter": {"table": "packages"}})
    time.sleep(15)
    runs = [
        r
        for r in worker.service.job_history("tick", limit=100)["runs"]
        if r["scheduled_at"] and datetime.fromisoformat(r["scheduled_at"]) >= started
    ]
    assert len([r for r in runs if r["outcome"] == "executed"]) >= 12
    late = sorted(
        (datetime.fromisoformat(r["started_at"]) - datetime.fromisoformat(r["scheduled_at"]))
        / timedelta(milliseconds=1)
        for r in runs
        if r["started_at"]
    )
    print(
        f"fire lateness during slow reads: p50 {late[len(late) // 2]:.1f} ms, max {late[-1]:.1f} ms"
    )


def test_a_broker_outage_loses_no_event(
    rabbitmq_url: str, database_url: str, names, empty_jobs_dir: Path, tmp_path: Path
) -> None:
    """The broker is cut for 10 s while a job fires every second and commands arrive: the job keeps firing
    (the scheduler never waits on the broker), and afterwards every run has its ``job.executed`` event, seen
    by an independent monitor (copies only with the same ``event_id``); every command is answered."""
    proxy = FaultProxy("127.0.0.1", 5672)
    through = rabbitmq_url.replace(":5672/", f":{proxy.port}/")
    watcher = EventWatcher(rabbitmq_url, names.events)
    collector = ReplyCollector(rabbitmq_url)
    worker = WorkerProcess.run(tmp_path, worker_env(database_url, through, names, empty_jobs_dir))
    try:
        worker.wait_for("consuming commands")
        with Client(rabbitmq_url, names=names, timeout=30) as client:
            client.call("job.create", handler="noop", job_id="tick", periodically="1")
            proxy.refuse()
            cut = datetime.now(UTC)
            sent = [
                client.send(
                    "job.create",
                    {"handler": "noop", "job_id": f"during-{n}", "when": LATER},
                    reply_to=collector.name,
                )
                for n in range(5)
            ]
            time.sleep(10)
            during = query(
                database_url,
                "SELECT count(*) FROM f8a_job_runs WHERE job_id = 'tick' AND started_at >= :cut",
                cut=cut,
            )[0][0]
            proxy.restore()
            collector.until(lambda replies: len(replies) >= len(sent), timeout=30)
            eventually(lambda: outbox_empty(database_url), timeout=30)
        assert worker.terminate() == 0  # (its last events are sent as it stops)
        assert outbox_empty(database_url)
        watcher.drain(2.0)
    finally:
        worker.stop()
        collector.close()
        watcher.close()
        proxy.close()
    assert during >= 7  # fired through the outage
    assert sorted(r["command_id"] for r in collector.replies) == sorted(sent)
    assert all(r["ok"] for r in collector.replies)
    executed_runs = query(
        database_url,
        "SELECT count(*) FROM f8a_job_runs WHERE job_id = 'tick' AND outcome = 'executed'",
    )[0][0]
    seen = watcher.named("job.executed", "tick")
    assert len({e["event_id"] for e in seen}) == executed_runs  # every run announced, none twice
    for event_id, copies in Counter(json.dumps(e, sort_keys=True) for e in seen).items():
        assert copies >= 1, event_id


@pytest.mark.parametrize("on_interrupt", ["report", "retry"])
def test_kill_9_during_firings(
    on_interrupt: str,
    rabbitmq_url: str,
    database_url: str,
    names,
    empty_jobs_dir: Path,
    tmp_path: Path,
) -> None:
    """120 runs of 0.3 s due at once, the worker killed with ``kill -9`` three times while they run. Every
    run that started is recorded as executed or interrupted; with ``report`` none ran twice, with ``retry``
    every one ran; each recorded outcome was announced once."""
    env = worker_env(database_url, rabbitmq_url, names, empty_jobs_dir, F8A_JOBS_THREADS="4")
    out = tmp_path / "runs.jsonl"
    watcher = EventWatcher(rabbitmq_url, names.events)
    jobs = [f"run-{n:03d}" for n in range(120)]
    worker = WorkerProcess.run(tmp_path, env)
    try:
        worker.wait_for("consuming commands")
        with Client(rabbitmq_url, names=names, timeout=30) as client:
            client.call("scheduler.pause")
            past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
            for job_id in jobs:
                client.send(
                    "job.create",
                    {
                        "handler": "sleep",
                        "kwargs": {"seconds": 0.3, "path": str(out)},
                        "job_id": job_id,
                        "when": past,
                        "misfire_grace_time": None,
                        "on_interrupt": on_interrupt,
                    },
                )
            eventually(lambda: len(query(database_url, "SELECT id FROM f8a_jobs")) == len(jobs))
            client.call("scheduler.resume")
        rng = random.Random()
        for _ in range(3):
            time.sleep(rng.uniform(1.0, 2.5))
            worker.kill()
            worker = WorkerProcess.run(tmp_path, env)
            worker.wait_for("consuming commands")
        eventually(
            lambda: (
                not query(database_url, "SELECT 1 FROM f8a_jobs")
                and not query(database_url, "SELECT 1 FROM f8a_run_ledger")
                and outbox_empty(database_url)
            ),
            timeout=90,
        )
        assert worker.terminate() == 0
        watcher.drain(2.0)
    finally:
        worker.stop()
        watcher.close()
    outcomes: dict[str, list[str]] = {job_id: [] for job_id in jobs}
    for job_id, outcome in query(
        database_url, "SELECT job_id, outcome FROM f8a_job_runs ORDER BY id"
    ):
        outcomes[job_id].append(outcome)
    ran = Counter(record["job_id"] for record in records(out))
    interrupted = [job_id for job_id, seen in outcomes.items() if "interrupted" in seen]
    assert interrupted, "the kills should land while runs are in progress"
    for job_id, seen in outcomes.items():
        if on_interrupt == "report":
            assert seen in (["executed"], ["interrupted"]), (job_id, seen)
            assert ran[job_id] <= 1, (job_id, ran[job_id])  # at most once
            if seen == ["executed"]:
                assert ran[job_id] == 1
        else:
            assert seen[-1] == "executed" and set(seen) <= {"interrupted", "executed"}, (
                job_id,
                seen,
            )
            assert ran[job_id] >= 1  # at least once
    for name, outcome in (("job.executed", "executed"), ("job.interrupted", "interrupted")):
        recorded = sum(seen.count(outcome) for seen in outcomes.values())
        announced = {e["event_id"] for e in watcher.named(name)}
        assert len(announced) == recorded, name
