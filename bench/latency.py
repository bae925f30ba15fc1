"""Benchmark 4: with 100,000 jobs stored, fire latency (scheduled time to handler start) of probe jobs, start-up
time, and ``job.list`` page latency; against bare APScheduler over a store of the same size, the worker on an
empty store, and ``job.get`` on the same worker."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from bench.driver import Driver, command, wait_ready
from bench.firing import run_bare
from bench.harness import (
    JOB_RUNS,
    Collector,
    Process,
    Row,
    delete_exchanges,
    delete_queues,
    fresh_database,
    percentile,
    repeat,
    start_worker,
    unique_prefix,
    worker_env,
)
from bench.jobfill import fill_bare_store, fill_worker_store

PROBES = 200
SPACING = 0.025  # seconds between probe runs: 40 due per second over 5 s
#: sequential round trips of each read: a p99 of 500 is the sixth slowest (of 50 it was the slowest, the
#: first request's)
PAGE_REQUESTS = 500
#: of the last page by offset, which reads every row before it (~70 ms a request at 100,000 stored)
OFFSET_PAGE_REQUESTS = 50


def started(driver: Driver, queue: str, worker: Process) -> float:
    """Seconds from spawning the worker until it answers a command."""
    wait_ready(driver, queue)
    return time.perf_counter() - worker.started


def create_probes(driver: Driver, queue: str) -> None:
    """PROBES one-shot jobs due SPACING apart from 3 s on, each created by its own ``job.create``."""
    first = time.time() + 3.0
    for n in range(PROBES):
        at = datetime.fromtimestamp(first + n * SPACING, UTC)
        reply = driver.call(
            queue,
            command(
                "job.create",
                {
                    "handler": "noop",
                    "job_id": f"probe-{n}",
                    "when": at.isoformat(),
                    "misfire_grace_time": None,
                },
            ),
        )
        assert reply["ok"], reply


def probe_lateness(engine: sa.Engine, timeout: float = 120.0) -> list[float]:
    """Milliseconds from each probe's scheduled time to its handler's start, once all have run."""
    late = (JOB_RUNS.c.started_at - JOB_RUNS.c.scheduled_at).label("late")
    query = sa.select(late).where(JOB_RUNS.c.job_id.like("probe-%"))
    deadline = time.monotonic() + timeout
    while True:
        with engine.connect() as connection:
            rows = connection.execute(query).all()
        if len(rows) >= PROBES:
            return [row.late.total_seconds() * 1000 for row in rows]
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(rows)} of {PROBES} probe runs recorded")
        time.sleep(0.2)


def latencies(
    driver: Driver,
    queue: str,
    name: str,
    args: dict[str, object],
    requests: int = PAGE_REQUESTS,
) -> list[float]:
    """``requests`` sequential round trips of one command, in milliseconds."""
    result = driver.run(queue, lambda _: command(name, args), requests, 1)
    return result.latencies_ms


#: reads compared with each other take turns this many times (see :func:`interleaved`)
ROUNDS = 10


def interleaved(
    driver: Driver,
    queue: str,
    reads: dict[str, tuple[str, dict[str, object]]],
    requests: int = PAGE_REQUESTS,
) -> dict[str, list[float]]:
    """``requests`` sequential round trips of each read, in milliseconds, the reads taking turns in
    ROUNDS blocks: a VM that slows down for a few seconds then slows each read alike, where reads timed
    one after the other gave their ratio a swing of a third from run to run."""
    timed: dict[str, list[float]] = {key: [] for key in reads}
    for turn in range(ROUNDS):
        block = requests // ROUNDS + (turn < requests % ROUNDS)
        for key, (name, args) in reads.items():
            timed[key] += latencies(driver, queue, name, args, block)
    return timed


def run(repetitions: int, scale: float, log_dir: Path) -> list[Row]:
    stored = max(1000, int(100_000 * scale))
    prefix = unique_prefix()
    commands = f"{prefix}_commands"
    driver = Driver()
    try:
        with fresh_database() as database_url, fresh_database() as empty_url:
            engine = sa.create_engine(database_url)
            far = datetime.now(UTC) + timedelta(days=30)
            fill_worker_store(engine, [far] * stored, "stored")
            fill_bare_store(engine, [far] * stored, "stored")

            def once(collected: Collector) -> None:
                worker = start_worker(worker_env(empty_url, prefix), log_dir)
                try:
                    collected.add("startup empty", started(driver, commands, worker))
                finally:
                    worker.stop()

                with engine.begin() as connection:
                    connection.execute(JOB_RUNS.delete())
                worker = start_worker(worker_env(database_url, prefix), log_dir)
                try:
                    collected.add("startup", started(driver, commands, worker))
                    create_probes(driver, commands)
                    lateness = probe_lateness(engine)
                    collected.add("fire p50", percentile(lateness, 50))
                    collected.add("fire p99", percentile(lateness, 99))
                    with engine.connect() as connection:  # the key before the last page of 100
                        deep_key = connection.execute(
                            sa.text("SELECT id FROM f8a_jobs ORDER BY id LIMIT 1 OFFSET :n"),
                            {"n": stored - 101},
                        ).scalar_one()
                    timed = interleaved(
                        driver,
                        commands,
                        {
                            "get": ("job.get", {"job_id": "stored-1"}),
                            "first": ("job.list", {"limit": 100}),
                            "after": ("job.list", {"limit": 100, "after": deep_key}),
                        },
                    )
                    timed["last"] = latencies(
                        driver,
                        commands,
                        "job.list",
                        {"limit": 100, "offset": stored - 100},
                        OFFSET_PAGE_REQUESTS,
                    )
                    for key, values in timed.items():
                        collected.add(f"{key} p50", percentile(values, 50))
                        collected.add(f"{key} p99", percentile(values, 99))
                    worker.check_alive()
                finally:
                    worker.stop()

                first = time.time() + 3.0
                bare = run_bare(
                    database_url, PROBES, log_dir, str(first), str(PROBES), str(SPACING)
                )
                collected.add("bare fire p50", percentile(bare.lateness_ms, 50))
                collected.add("bare fire p99", percentile(bare.lateness_ms, 99))
                collected.add("bare startup", bare.startup_s)

            c = repeat(repetitions, once)
            engine.dispose()
    finally:
        driver.close()
        delete_queues(commands, f"{prefix}_commands_dead")
        delete_exchanges(f"{prefix}_events", f"{prefix}_flows")

    at = f"{stored:,} stored"
    bare = "bare APScheduler"
    return [
        Row(
            "4 latency",
            f"fire latency p50, {at}",
            "ms",
            c["fire p50"],
            c["bare fire p50"],
            bare,
            False,
        ),
        Row(
            "4 latency",
            f"fire latency p99, {at}",
            "ms",
            c["fire p99"],
            c["bare fire p99"],
            bare,
            False,
            goal="<= 5 ms",
            goal_met=c["fire p99"].median <= 5,
        ),
        Row(
            "4 latency",
            f"start-up, {at}",
            "s",
            c["startup"],
            c["startup empty"],
            "empty store",
            False,
        ),
        Row("4 latency", f"start-up, {at}", "s", c["startup"], c["bare startup"], bare, False),
        Row(
            "4 latency",
            f"job.list first page p50, {at}",
            "ms",
            c["first p50"],
            c["get p50"],
            "job.get",
            False,
        ),
        Row(
            "4 latency",
            f"job.list first page p99, {at}",
            "ms",
            c["first p99"],
            c["get p99"],
            "job.get",
            False,
            goal="<= 2 x job.get p99",
            goal_met=c["first p99"].median <= 2 * c["get p99"].median,
        ),
        Row(
            "4 latency",
            f"job.list last page p50, {at}",
            "ms",
            c["last p50"],
            c["get p50"],
            "job.get",
            False,
        ),
        Row(
            "4 latency",
            f"job.list last page p99, {at}",
            "ms",
            c["last p99"],
            c["get p99"],
            "job.get",
            False,
        ),
        Row(
            "4 latency",
            f"job.list last page via after, p50, {at}",
            "ms",
            c["after p50"],
            c["get p50"],
            "job.get",
            False,
        ),
        Row(
            "4 latency",
            f"job.list last page via after, p99, {at}",
            "ms",
            c["after p99"],
            c["get p99"],
            "job.get",
            False,
            goal="<= 2 x job.get p99",
            goal_met=c["after p99"].median <= 2 * c["get p99"].median,
        ),
    ]
