"""Benchmark 7 (opt-in, not in ``make bench`` nor CI): ten million stored jobs on one PostgreSQL.

    python -m bench --only scale -r 1               # 10,000,000 jobs; the first run fills a template (~5 min)
    python -m bench --only scale --scale 0.1 -r 1   # 1,000,000

The jobs (one-shot, due over the day 30 days on, as package versions scheduled for analysis would be) are
written once by ``COPY`` into a template database that is kept (``f8a_bench_template_<jobs>``; drop it with
``dropdb`` to get the disk back) and copied per repetition (``CREATE DATABASE ... TEMPLATE``, file copy). On
the copy, one replica: start-up, fire latency of probe jobs, ``job.get``, ``job.list`` pages (first, by
``after`` deep in the store, filtered), the counts against ``count(*)``, RSS. Then a catch-up: 20,000
one-shot jobs due a moment ago, committed once 1 (then 3) replicas are ready, every worker pinned to the
same core (``taskset --cpu-list 1``: the same CPU for one replica as for three; PostgreSQL, RabbitMQ and this
driver keep both cores), then unpinned. Last, the store's size on disk and the claim query's plan over it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.driver import Driver, command
from bench.firing import ExecutedEvents
from bench.harness import (
    JOB_RUNS,
    POSTGRES_URL,
    WAKE_REPLICAS,
    Collector,
    Process,
    Row,
    Stats,
    delete_exchanges,
    delete_queues,
    fresh_database,
    peak_rss_mb,
    percentile,
    repeat,
    rss_mb,
    start_worker,
    unique_prefix,
    upgrade_store,
    wait_all_ready,
    worker_env,
)
from bench.jobfill import copy_worker_store
from bench.latency import create_probes, interleaved, probe_lateness, started
from bench.pgcost import claim_plan

JOBS = 10_000_000
DUE = 20_000  # one-shot jobs due at once, fired by 1 and by 3 replicas (at scale 1)
PINNED = "1"  # the core every worker of the catch-up runs on


def _admin() -> sa.Engine:
    return sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")


def _url(database: str) -> str:
    return sa.make_url(POSTGRES_URL).set(database=database).render_as_string(hide_password=False)


def _template(jobs: int) -> tuple[str, float | None]:
    """The template's name, filled now (and how long that took) unless a complete one is kept."""
    name = f"f8a_bench_template_{jobs}"
    admin = _admin()
    with admin.connect() as connection:
        exists = connection.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
        ).first()
    if exists:
        engine = sa.create_engine(_url(name))
        with engine.connect() as connection:
            complete = connection.execute(sa.text("SELECT to_regclass('bench_filled')")).scalar()
        engine.dispose()
        if complete:
            admin.dispose()
            upgrade_store(_url(name))  # once, not per copy, when the worker's schema moved on
            return name, None
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    began = time.perf_counter()
    engine = sa.create_engine(_url(name))
    far = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=30)
    copy_worker_store(engine, (far + timedelta(seconds=n % 86_400) for n in range(jobs)), "stored")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sa.text("VACUUM (ANALYZE, FREEZE) f8a_jobs"))
        connection.execute(sa.text("CREATE TABLE bench_filled (jobs bigint)"))
        connection.execute(sa.text("INSERT INTO bench_filled VALUES (:n)"), {"n": jobs})
    engine.dispose()
    return name, time.perf_counter() - began


@contextmanager
def _copy_of(template: str) -> Iterator[tuple[str, float]]:
    """A copy of ``template`` for one repetition (its URL, and the seconds the copy took), dropped after."""
    name = f"{template}_run"
    admin = _admin()
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        began = time.perf_counter()
        connection.execute(
            sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
        )
        copied = time.perf_counter() - began
    try:
        yield _url(name), copied
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _one_replica(
    collected: Collector, driver: Driver, engine: sa.Engine, worker: Process, commands: str
) -> None:
    """What one replica shows on the big store: start-up, fire latency, reads, counts, memory."""
    collected.add("startup", started(driver, commands, worker))
    create_probes(driver, commands)
    lateness = probe_lateness(engine)
    collected.add("fire p50", percentile(lateness, 50))
    collected.add("fire p99", percentile(lateness, 99))
    with engine.connect() as connection:
        total = connection.execute(sa.text("SELECT count(*) FROM f8a_jobs")).scalar_one()
        deep = connection.execute(  # the key before the last 100 jobs by id, read off the index
            sa.text("SELECT id FROM f8a_jobs ORDER BY id DESC LIMIT 1 OFFSET 100")
        ).scalar_one()
    reads: dict[str, tuple[str, dict[str, object]]] = {
        "get": ("job.get", {"job_id": f"stored-{total // 2}"}),
        "first": ("job.list", {"limit": 100}),
        "after": ("job.list", {"limit": 100, "after": deep}),
        "handler": ("job.list", {"limit": 100, "handler": "noop", "after": deep}),
        "prefix": ("job.list", {"limit": 100, "prefix": "stored-98765"}),
    }
    for key, values in interleaved(driver, commands, reads).items():
        collected.add(f"{key} p50", percentile(values, 50))
        collected.add(f"{key} p99", percentile(values, 99))
    listed = driver.call(commands, command("job.list", {"limit": 1}))
    collected.add("count error", abs(int(listed["result"]["jobs_count"]) - total))
    collected.add("rss", peak_rss_mb(worker.pid))


def _catch_up(
    engine: sa.Engine,
    url: str,
    prefix: str,
    events: ExecutedEvents,
    due: int,
    replicas: int,
    cpus: str | None,
    log_dir: Path,
) -> float:
    """``due`` one-shot jobs due a moment ago, fired by ``replicas`` workers on ``cpus``: runs per second
    from the rows' commit to the last run's event. The rows are committed once every replica is ready (no
    replica's start-up among the others' runs), with the wake-up a command's commit would send
    (persistence/notify.py)."""
    label = f"due{replicas}{'pinned' if cpus else 'free'}"
    env = worker_env(url, prefix)
    workers: list[Process] = []

    def start_replicas(connection: Any) -> None:
        workers.extend(start_worker(env, log_dir, cpus=cpus) for _ in range(replicas))
        wait_all_ready(workers)
        connection.execute(WAKE_REPLICAS)

    past = datetime.now(UTC) - timedelta(seconds=1)
    try:
        copy_worker_store(engine, [past] * due, label, per_commit=due, before_commit=start_replicas)
        committed = time.time()
        arrived = events.wait(due, workers)
    finally:
        for worker in workers:
            worker.stop()
    with engine.connect() as connection:
        runs = connection.execute(
            sa.select(sa.func.count()).where(
                JOB_RUNS.c.job_id.like(f"{label}-%"), JOB_RUNS.c.outcome == "executed"
            )
        ).scalar_one()
        left = connection.execute(
            sa.text("SELECT count(*) FROM f8a_jobs WHERE id LIKE :p"), {"p": f"{label}-%"}
        ).scalar_one()
    if runs != due or left:
        raise RuntimeError(f"{runs} of {due} runs recorded, {left} due jobs left")
    return due / (max(arrived) - committed)


def _sizes(engine: sa.Engine) -> dict[str, float]:
    query = """SELECT pg_database_size(current_database()), pg_table_size('f8a_jobs'),
                      pg_indexes_size('f8a_jobs')"""
    with engine.connect() as connection:
        database, table, indexes = connection.execute(sa.text(query)).one()
    gib = 1024**3
    return {"database": database / gib, "jobs table": table / gib, "jobs indexes": indexes / gib}


def run(repetitions: int, scale: float, log_dir: Path) -> list[Row]:
    jobs = max(10_000, int(JOBS * scale))
    due = max(500, int(DUE * scale))
    template, filled = _template(jobs)
    prefix = unique_prefix()
    commands = f"{prefix}_commands"
    driver = Driver()
    events = ExecutedEvents(f"{prefix}_events", f"{prefix}_executed")
    found: dict[str, object] = {}
    try:

        def once(collected: Collector) -> None:
            with fresh_database() as empty:
                worker = start_worker(worker_env(empty, prefix), log_dir)
                try:
                    collected.add("startup empty", started(driver, commands, worker))
                    collected.add("rss empty", rss_mb(worker.pid))
                finally:
                    worker.stop()
            with _copy_of(template) as (url, copied):
                collected.add("copy", copied)
                engine = sa.create_engine(url)
                found.setdefault("sizes", _sizes(engine))
                worker = start_worker(worker_env(url, prefix), log_dir)
                try:
                    _one_replica(collected, driver, engine, worker, commands)
                finally:
                    worker.stop()
                for cpus in (PINNED, None):
                    for replicas in (1, 3):
                        rate = _catch_up(engine, url, prefix, events, due, replicas, cpus, log_dir)
                        collected.add(f"catch-up {replicas} {cpus or 'free'}", rate)
                engine.dispose()
                found.setdefault("plan", claim_plan(url, due))

        c = repeat(repetitions, once)
    finally:
        events.close()
        driver.close()
        delete_queues(commands, f"{prefix}_commands_dead", f"{prefix}_executed")
        delete_exchanges(f"{prefix}_events", f"{prefix}_flows")
    print(f"scale: {jobs:,} jobs in template {template}; store sizes {found['sizes']}")
    print(f"scale: claim plan with {due:,} due of {jobs:,}:\n{found['plan']}")
    return _rows(c, jobs, due, filled)


def _rows(c: Collector, jobs: int, due: int, filled: float | None) -> list[Row]:
    at = f"{jobs:,} stored"

    def row(
        metric: str,
        unit: str,
        project: Stats,
        limit: tuple[Stats, str] | None = None,
        goal: tuple[str, bool] | None = None,
        higher: bool = False,
    ) -> Row:
        """One line: ``limit`` is (its figures, its name), ``goal`` (in words, met)."""
        against, name = limit or (None, "")
        words, met = goal or ("", None)
        return Row("7 scale", f"{metric}, {at}", unit, project, against, name, higher, words, met)

    get_p99 = c["get p99"]
    rows = [
        row("start-up", "s", c["startup"], (c["startup empty"], "empty store"),
            ("<= 1 s", c["startup"].median <= 1)),
        row("fire latency p50", "ms", c["fire p50"]),
        row("fire latency p99", "ms", c["fire p99"], goal=("<= 5 ms", c["fire p99"].median <= 5)),
        row("job.get p50", "ms", c["get p50"]),
        row("job.get p99", "ms", get_p99),
    ]  # fmt: skip
    for key, what in (
        ("first", "job.list first page"),
        ("after", "job.list page by after, last 100"),
        ("handler", "job.list handler filter, by after"),
        ("prefix", "job.list prefix filter"),
    ):
        met = c[f"{key} p99"].median <= 2 * get_p99.median
        rows.append(
            row(f"{what} p99", "ms", c[f"{key} p99"], (get_p99, "job.get p99"),
                ("<= 2 x job.get p99", met))
        )  # fmt: skip
    count_error = c["count error"]
    rows += [
        row("jobs_count - count(*)", "jobs", count_error,
            goal=("0 (exact)", max(count_error.values) == 0)),
        row("worker peak RSS", "MiB", c["rss"], (c["rss empty"], "empty store, started"),
            ("<= 150 MiB", c["rss"].median <= 150)),
    ]  # fmt: skip
    for cpus, where in ((PINNED, f"on core {PINNED}"), ("free", "on both cores")):
        three, one = c[f"catch-up 3 {cpus}"], c[f"catch-up 1 {cpus}"]
        rows.append(
            row(f"catch-up of {due:,} due, 3 replicas {where}", "runs/s", three,
                (one, f"1 replica {where}"), (">= 1.0 x one replica", three.median >= one.median),
                higher=True)
        )  # fmt: skip
    rows.append(row("copy of the template", "s", c["copy"]))
    if filled is not None:
        rows.append(row("fill of the template by COPY", "s", Stats((filled,))))
    return rows
