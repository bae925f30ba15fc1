"""Benchmark 3: firing. 10,000 one-shot jobs due at once (catch-up after downtime) and a steady stream of jobs
due at 1,000/s, each run persisted with its ``job.executed`` event, by 1, 2 and 3 replicas on one store; against
bare APScheduler (one process: it cannot share a store) on the same PostgreSQL with the stock job store. Then
failover: a stream fired by 3 replicas, one killed with ``kill -9`` in the middle; the time to the next run
and to the report of its runs in flight, against the configured lapse."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from kombu import Connection, Consumer, Exchange, Queue

from bench.harness import (
    JOB_RUNS,
    RABBITMQ_URL,
    Collector,
    Process,
    Row,
    delete_exchanges,
    delete_queues,
    fresh_database,
    percentile,
    python_module,
    repeat,
    start_worker,
    unique_prefix,
    worker_env,
)
from bench.jobfill import fill_bare_store, fill_worker_store

STREAM_RATE = 1000  # jobs due per second in the steady stream
REPLICAS = (1, 2, 3)
FAILOVER_RATE = 100  # jobs due per second while a replica is killed
LAPSE = 4.0  # F8A_JOBS_REPLICA_LAPSE of the failover run (the default)
TEST_PLUGINS = Path(__file__).resolve().parent.parent / "tests" / "plugins"
STREAM_LEAD = (
    4.0  # seconds between filling the store and the first due run (the worker starts meanwhile)
)


class ExecutedEvents:
    """Counts ``job.executed`` events on a queue of the bench's own, noting when each arrived."""

    def __init__(self, events_exchange: str, queue: str) -> None:
        self.conn = Connection(RABBITMQ_URL)
        channel = self.conn.channel()
        self.queue = Queue(
            queue, Exchange(events_exchange, type="topic", durable=True), "job.executed"
        )(channel)
        self.queue.declare()
        self.arrived: list[float] = []
        self.consumer = Consumer(
            channel, [self.queue], on_message=self._on_message, no_ack=True, accept=None
        )
        self.consumer.consume()

    def _on_message(self, _message: object) -> None:
        self.arrived.append(time.time())

    def wait(self, count: int, workers: list[Process], timeout: float = 600.0) -> list[float]:
        deadline = time.monotonic() + timeout
        while len(self.arrived) < count:
            try:
                self.conn.drain_events(timeout=1.0)
            except TimeoutError:
                for worker in workers:
                    worker.check_alive()
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{len(self.arrived)} of {count} events") from None
        arrived, self.arrived = self.arrived, []
        return arrived

    def close(self) -> None:
        self.conn.release()


def arrival_rate(times: list[float]) -> float:
    return (len(times) - 1) / (max(times) - min(times))


def _worker_lateness(engine: sa.Engine) -> list[float]:
    late = (JOB_RUNS.c.started_at - JOB_RUNS.c.scheduled_at).label("late")
    with engine.connect() as connection:
        rows = connection.execute(sa.select(late).where(JOB_RUNS.c.outcome == "executed"))
        return [row.late.total_seconds() * 1000 for row in rows]


def _check_persisted(engine: sa.Engine, count: int) -> None:
    """Every run recorded, every one-shot job gone from the store."""
    with engine.connect() as connection:
        runs = connection.execute(
            sa.select(sa.func.count()).where(JOB_RUNS.c.outcome == "executed")
        ).scalar_one()
        left = connection.execute(sa.text("SELECT count(*) FROM f8a_jobs")).scalar_one()
    if runs != count or left != 0:
        raise RuntimeError(f"{runs} runs recorded of {count}; {left} jobs left in the store")


@dataclass(frozen=True)
class BareRuns:
    rate: float
    lateness_ms: list[float]
    startup_s: float  # from process spawn to a started scheduler


def run_bare(database_url: str, count: int, log_dir: Path, *probe: str) -> BareRuns:
    """Run bare APScheduler until ``count`` runs are done; see bench/bare_scheduler.py."""
    process = python_module(
        "bench.bare_scheduler", database_url, str(count), *probe, log_dir=log_dir, name="bare"
    )
    code = process.proc.wait(600)
    lines = [line for line in process.output().splitlines() if line.startswith("{")]
    if code != 0 or len(lines) < 2:
        raise RuntimeError(f"bare scheduler failed:\n{process.output()[-3000:]}")
    result = json.loads(lines[-1])
    if result["executed"] != count:
        raise RuntimeError(f"bare scheduler ran {result['executed']} of {count}")
    rate = (count - 1) / (result["last"] - result["first"]) if count > 1 else 0.0
    startup = json.loads(lines[0])["ready"] - process.started_wall
    return BareRuns(rate, result["lateness_ms"], startup)


def _fire(
    engine: sa.Engine,
    database_url: str,
    prefix: str,
    events: ExecutedEvents,
    count: int,
    log_dir: Path,
    replicas: int = 1,
) -> list[float]:
    """Start ``replicas`` workers on the filled store, wait for ``count`` job.executed events, stop them, and
    check that every run was persisted once; return when each event arrived."""
    workers = [start_worker(worker_env(database_url, prefix), log_dir) for _ in range(replicas)]
    try:
        arrived = events.wait(count, workers)
    finally:
        for worker in workers:
            worker.stop()
    _check_persisted(engine, count)
    return arrived


def _failover(
    engine: sa.Engine, database_url: str, prefix: str, log_dir: Path
) -> tuple[float, float]:
    """3 replicas fire a stream of FAILOVER_RATE/s of 0.2-s runs; one with runs in flight is killed with
    ``kill -9`` 4 s in. Seconds from the kill to the next run started by a survivor, and to the report of
    the killed one's runs in flight (the lapse and a heartbeat)."""
    first = datetime.now(UTC) + timedelta(seconds=STREAM_LEAD)
    times = [first + timedelta(seconds=n / FAILOVER_RATE) for n in range(FAILOVER_RATE * 12)]
    fill_worker_store(engine, times, "failover", handler="sleep", kwargs={"seconds": 0.2})
    # the test suite's handler package lends its ``sleep`` handler: runs that are in flight when the kill lands
    env = worker_env(
        database_url, prefix, F8A_JOBS_REPLICA_LAPSE=str(LAPSE), PYTHONPATH=str(TEST_PLUGINS)
    )
    workers = [start_worker(env, log_dir) for _ in range(3)]
    try:
        time.sleep(max(0.0, (first - datetime.now(UTC)).total_seconds()) + 4)
        victim = _busy_replica(engine, workers)
        killed = datetime.now(UTC)
        victim.proc.kill()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                left = connection.execute(sa.text("SELECT count(*) FROM f8a_jobs")).scalar_one()
                ledger = connection.execute(
                    sa.text("SELECT count(*) FROM f8a_run_ledger")
                ).scalar_one()
            if not left and not ledger:
                break
            time.sleep(0.5)
        with engine.connect() as connection:
            next_run = connection.execute(
                sa.select(sa.func.min(JOB_RUNS.c.started_at)).where(JOB_RUNS.c.started_at > killed)
            ).scalar_one()
            reported = connection.execute(
                sa.select(sa.func.min(JOB_RUNS.c.finished_at)).where(
                    JOB_RUNS.c.outcome == "interrupted"
                )
            ).scalar_one()
            doubled = connection.execute(
                sa.text(
                    "SELECT count(*) FROM (SELECT job_id FROM f8a_job_runs "
                    "GROUP BY job_id HAVING count(*) > 1) AS d"
                )
            ).scalar_one()
    finally:
        for worker in workers:
            worker.stop()
    if doubled:
        raise RuntimeError(f"{doubled} runs fired twice during failover")
    if reported is None:
        raise RuntimeError("the killed replica's runs in flight were not reported interrupted")
    return (next_run - killed).total_seconds(), (reported - killed).total_seconds()


def run(repetitions: int, scale: float, log_dir: Path) -> list[Row]:
    due_at_once = max(500, int(10_000 * scale))
    stream = max(300, int(3 * STREAM_RATE * scale))

    def once(collected: Collector) -> None:
        prefix = unique_prefix()
        with fresh_database() as database_url:
            engine = sa.create_engine(database_url)
            events = ExecutedEvents(f"{prefix}_events", f"{prefix}_executed")
            try:
                for replicas in REPLICAS:
                    # catch-up: everything due a second ago, workers started afterwards
                    past = datetime.now(UTC) - timedelta(seconds=1)
                    fill_worker_store(engine, [past] * due_at_once, "due")
                    arrived = _fire(
                        engine, database_url, prefix, events, due_at_once, log_dir, replicas
                    )
                    collected.add(f"catch-up project {replicas}", arrival_rate(arrived))
                    _clear_runs(engine)
                fill_bare_store(engine, [past] * due_at_once, "due")
                bare = run_bare(database_url, due_at_once, log_dir)
                collected.add("catch-up limit", bare.rate)

                # steady stream: STREAM_RATE jobs due per second, from a few seconds from now
                for replicas in REPLICAS:
                    first = datetime.now(UTC) + timedelta(seconds=STREAM_LEAD)
                    times = [first + timedelta(seconds=n / STREAM_RATE) for n in range(stream)]
                    fill_worker_store(engine, times, "stream")
                    arrived = _fire(engine, database_url, prefix, events, stream, log_dir, replicas)
                    lateness = _worker_lateness(engine)
                    collected.add(f"stream rate project {replicas}", arrival_rate(arrived))
                    collected.add(f"stream p50 project {replicas}", percentile(lateness, 50))
                    collected.add(f"stream p99 project {replicas}", percentile(lateness, 99))
                    _clear_runs(engine)
                first = datetime.now(UTC) + timedelta(seconds=STREAM_LEAD)
                times = [first + timedelta(seconds=n / STREAM_RATE) for n in range(stream)]
                fill_bare_store(engine, times, "stream")
                bare = run_bare(database_url, stream, log_dir)
                collected.add("stream rate limit", bare.rate)
                collected.add("stream p50 limit", percentile(bare.lateness_ms, 50))
                collected.add("stream p99 limit", percentile(bare.lateness_ms, 99))

                next_run, reported = _failover(engine, database_url, prefix, log_dir)
                collected.add("failover next run", next_run * 1000)
                collected.add("failover reported", reported)
                collected.add("lapse", LAPSE)
            finally:
                events.close()
                engine.dispose()
                delete_queues(f"{prefix}_executed", f"{prefix}_commands", f"{prefix}_commands_dead")
                delete_exchanges(f"{prefix}_events", f"{prefix}_flows")

    c = repeat(repetitions, once)
    rows = []
    for replicas in REPLICAS:
        catch_up = c[f"catch-up project {replicas}"]
        label = f"{replicas} replica{'s' if replicas > 1 else ''}"
        catch_up_ratio = catch_up.median / c["catch-up limit"].median
        late_p99 = c[f"stream p99 project {replicas}"]
        one = replicas == 1  # the goals are one replica's (more replicas only add to them)
        rows += [
            Row(
                "3 firing",
                f"catch-up: {due_at_once:,} due at once, {label}",
                "runs/s",
                catch_up,
                c["catch-up limit"],
                "bare APScheduler",
                goal=">= 1.0 x bare" if one else "",
                goal_met=catch_up_ratio >= 1.0 if one else None,
            ),
            Row(
                "3 firing",
                f"stream: {stream:,} due at {STREAM_RATE:,}/s, {label}",
                "runs/s",
                c[f"stream rate project {replicas}"],
                c["stream rate limit"],
                "bare APScheduler",
            ),
            Row(
                "3 firing",
                f"stream: lateness p50, {label}",
                "ms",
                c[f"stream p50 project {replicas}"],
                c["stream p50 limit"],
                "bare APScheduler",
                higher_is_better=False,
            ),
            Row(
                "3 firing",
                f"stream: lateness p99, {label}",
                "ms",
                late_p99,
                c["stream p99 limit"],
                "bare APScheduler",
                higher_is_better=False,
                goal="<= 1.0 x bare" if one else "",
                goal_met=late_p99.median <= c["stream p99 limit"].median if one else None,
            ),
        ]
    return [
        *rows,
        Row(
            "3 firing",
            f"failover: kill -9 of 1 of 3 replicas firing {FAILOVER_RATE}/s, next run after",
            "ms",
            c["failover next run"],
            None,
            "",
            higher_is_better=False,
        ),
        Row(
            "3 firing",
            "failover: its runs in flight reported interrupted after",
            "s",
            c["failover reported"],
            c["lapse"],
            "the lapse",
            higher_is_better=False,
            goal="within 5 s",
            goal_met=c["failover reported"].median <= 5.0,
        ),
    ]


def _busy_replica(engine: sa.Engine, workers: list[Process]) -> Process:
    """One of ``workers`` with runs in flight (a ledger entry's replica id is host:pid:random)."""
    pids = {worker.proc.pid: worker for worker in workers}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            running = connection.execute(sa.text("SELECT worker FROM f8a_run_ledger")).scalars()
            for replica in running:
                worker = pids.get(int(replica.split(":")[-2]))
                if worker is not None:
                    return worker
        time.sleep(0.01)
    raise RuntimeError("no replica had runs in flight")


def _clear_runs(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        connection.execute(JOB_RUNS.delete())
