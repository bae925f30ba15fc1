"""What one run costs PostgreSQL: the input of the one-PostgreSQL model in docs/benchmarks.md.

A catch-up of one-shot jobs due at once (the heaviest firing the store sees) by 1 and by 3 replicas; over each,
from PostgreSQL's own counters: WAL bytes, commits and rows written per run, PostgreSQL's and the workers' CPU
per run, and the rate. Then the claim query's plan over a store of that size with every row due.

    python -m bench.pgcost                 # 10,000 runs per case
    python -m bench.pgcost --runs 50000 --stored 1000000

``--stored`` adds that many jobs due in 30 days (not fired) to the store first: the claim's cost with a
large store. Then a steady stream of as many runs due ``--stream-rate`` a second (500) to one replica
started first: commits per run where passes are small. Prints one JSON document: ``catch_ups`` (per-run
figures for 1 and 3 replicas), ``pinned_catch_ups`` (the same with every worker pinned to ``--cpus``, one
core by default, and ready first: what 3 replicas cost where one core is all they get), ``stream`` and
``claim_plan`` (the plan's lines).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.harness import (
    WAKE_REPLICAS,
    Process,
    cpu_seconds,
    fresh_database,
    service_cpu_seconds,
    start_worker,
    unique_prefix,
    wait_all_ready,
    worker_env,
)
from bench.jobfill import copy_worker_store, fill_worker_store

#: the claim of a scheduler pass as PostgreSQL sees it (persistence/job_repository.py builds the same)
CLAIM = """
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT id, job_state, (SELECT count(*) FROM f8a_run_ledger l WHERE l.job_id = f8a_jobs.id AND l.worker != '')
FROM f8a_jobs WHERE next_run_time <= :until ORDER BY next_run_time LIMIT 100 FOR UPDATE SKIP LOCKED
"""
_COUNTERS = """
SELECT pg_current_wal_lsn() - '0/0'::pg_lsn, xact_commit, tup_inserted, tup_updated, tup_deleted
FROM pg_stat_database WHERE datname = current_database()
"""


@dataclass
class Counters:
    wal: int
    commits: int
    inserted: int
    updated: int
    deleted: int
    postgres_cpu: float

    @classmethod
    def read(cls, engine: sa.Engine) -> Counters:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
            row = connection.execute(sa.text(_COUNTERS)).one()
        wal, commits, inserted, updated, deleted = (int(value) for value in row)
        cpu = service_cpu_seconds()["postgresql"]
        return cls(wal, commits, inserted, updated, deleted, cpu)


def _wait_fired(engine: sa.Engine, timeout: float = 900.0) -> None:
    """Until every due job fired and every outcome and event left the ledger and the outbox."""
    deadline = time.monotonic() + timeout
    query = sa.text(
        "SELECT (SELECT count(*) FROM f8a_jobs WHERE next_run_time < :soon)"
        " + (SELECT count(*) FROM f8a_run_ledger)"
        " + (SELECT count(*) FROM f8a_outbox WHERE published_at IS NULL)"
    )
    soon = (datetime.now(UTC) + timedelta(days=1)).timestamp()
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            if not connection.execute(query, {"soon": soon}).scalar_one():
                return
        time.sleep(0.2)
    raise RuntimeError("the catch-up did not finish")


def catch_up(database_url: str, runs: int, replicas: int, log_dir: Path) -> dict[str, float]:
    """Per-run costs of ``runs`` one-shot jobs due at once, fired by ``replicas`` workers started after."""
    due = [datetime.now(UTC) - timedelta(seconds=1)] * runs
    return _costs(database_url, due, replicas, log_dir, f"due{replicas}", ready_first=False)


def pinned_catch_up(
    database_url: str, runs: int, replicas: int, cpus: str, log_dir: Path
) -> dict[str, float | str]:
    """The same catch-up with every worker pinned to ``cpus`` (taskset) and ready before the jobs are
    written: pinned start-ups would share the core with the runs."""
    due = [datetime.now(UTC) - timedelta(seconds=1)] * runs
    label = f"pinned{replicas}"
    costs = _costs(database_url, due, replicas, log_dir, label, ready_first=True, cpus=cpus)
    return {"cpus": cpus, **costs}


def stream(database_url: str, runs: int, rate: float, log_dir: Path) -> dict[str, float]:
    """Per-run costs of ``runs`` one-shot jobs due ``rate`` a second, fired by one ready worker."""
    first = datetime.now(UTC) + timedelta(seconds=1)
    due = [first + timedelta(seconds=n / rate) for n in range(runs)]
    costs = _costs(database_url, due, 1, log_dir, "stream", ready_first=True)
    return {"due per second": rate, **costs}


def _costs(
    database_url: str,
    due: list[datetime],
    replicas: int,
    log_dir: Path,
    label: str,
    ready_first: bool,
    cpus: str | None = None,
) -> dict[str, float]:
    """Fire the one-shot jobs due at ``due`` with ``replicas`` workers (started before the rows are written,
    and woken as a command would wake them, when ``ready_first``); PostgreSQL's counters per run."""
    engine = sa.create_engine(database_url)
    env = worker_env(database_url, unique_prefix())
    workers: list[Process] = []
    if ready_first:
        workers += [start_worker(env, log_dir, cpus=cpus) for _ in range(replicas)]
        wait_all_ready(workers)
    #: where the runs start from, for ready workers taken just before the commit that lets them fire (a
    #: ready worker's start-up is not the runs'; one started after is, and says so)
    marks: dict[str, float] = {}

    def wake(raw: Any) -> None:
        marks.update(
            workers=sum(cpu_seconds(worker.pid) for worker in workers),
            postgresql=service_cpu_seconds()["postgresql"],
            started=time.perf_counter(),
        )
        raw.execute(WAKE_REPLICAS)

    try:
        copy_worker_store(
            engine, due, label, per_commit=len(due), before_commit=wake if ready_first else None
        )
        # after the commit, or the COPY's rows would count; the few runs fired meanwhile are left out
        before = Counters.read(engine)
        before.postgres_cpu = marks.get("postgresql", before.postgres_cpu)
        worker_cpu_before = marks.get("workers", 0.0)
        started = marks.get("started", time.perf_counter())
        if not ready_first:
            workers += [start_worker(env, log_dir) for _ in range(replicas)]
        _wait_fired(engine)
        elapsed = time.perf_counter() - started
        worker_cpu = sum(cpu_seconds(worker.pid) for worker in workers) - worker_cpu_before
        # while the workers' sessions live: an ended backend takes its CPU time with it
        postgres_cpu = service_cpu_seconds()["postgresql"]
    finally:
        for worker in workers:
            worker.stop()
    after = Counters.read(engine)  # once the sessions ended: they report their counts at exit
    after.postgres_cpu = postgres_cpu
    engine.dispose()
    runs = len(due)
    start_up = "" if ready_first else " (start-up included)"
    return {
        "replicas": replicas,
        "runs": runs,
        f"runs/s{start_up}": runs / elapsed,
        "WAL bytes per run": (after.wal - before.wal) / runs,
        "commits per run": (after.commits - before.commits) / runs,
        "rows inserted per run": (after.inserted - before.inserted) / runs,
        "rows updated per run": (after.updated - before.updated) / runs,
        "rows deleted per run": (after.deleted - before.deleted) / runs,
        "PostgreSQL CPU ms per run": 1000 * (after.postgres_cpu - before.postgres_cpu) / runs,
        f"worker CPU ms per run{start_up}": 1000 * worker_cpu / runs,
    }


def claim_plan(database_url: str, due: int) -> str:
    engine = sa.create_engine(database_url)
    fill_worker_store(engine, [datetime.now(UTC) - timedelta(seconds=1)] * due, "plan")
    with engine.connect() as connection:  # rolled back at close: the claim's row locks go with it
        connection.execute(sa.text("ANALYZE f8a_jobs"))
        plan = connection.execute(sa.text(CLAIM), {"until": time.time()}).scalars().all()
    engine.dispose()
    return "\n".join(plan)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pgcost", description=__doc__)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--stored", type=int, default=0, help="jobs due in 30 days, stored first")
    parser.add_argument(
        "--cpus",
        default="1",
        help="the cores the pinned catch-ups' workers share (taskset --cpu-list)",
    )
    parser.add_argument(
        "--stream-rate", type=float, default=500.0, help="runs due per second in the steady stream"
    )
    args = parser.parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix="f8a-pgcost-"))
    with fresh_database() as database_url:
        if args.stored:
            far = datetime.now(UTC) + timedelta(days=30)
            fill_worker_store(sa.create_engine(database_url), [far] * args.stored, "stored")
        report = {
            "catch_ups": [catch_up(database_url, args.runs, n, log_dir) for n in (1, 3)],
            "pinned_catch_ups": [
                pinned_catch_up(database_url, args.runs, n, args.cpus, log_dir) for n in (1, 3)
            ],
            "stream": stream(database_url, args.runs, args.stream_rate, log_dir),
            "claim_plan": claim_plan(database_url, args.runs).splitlines(),
        }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
