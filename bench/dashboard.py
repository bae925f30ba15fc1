"""Benchmark 6: the dashboard and job.list's filters with 1,000,000 jobs stored: the jobs page and a job page
against the commands behind them (``job.list`` of 50; ``job.get`` with its next runs and ``job.history``), and
each filtered ``job.list`` page against ``job.get``, all measured in the same run, one request at a time."""

from __future__ import annotations

import http.client
import socket
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.driver import Driver, command, wait_ready
from bench.harness import (
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
from bench.jobfill import fill_worker_store

STORED = 1_000_000
REQUESTS = 60
PAGE = 50
#: job.list's filters, each narrowing the store as the set-up below shapes it
FILTERS: dict[str, dict[str, Any]] = {
    "no filter (first page)": {},
    "prefix (a tenth match)": {"prefix": "stored-9"},
    "state paused (a tenth)": {"state": "paused"},
    "handler (a hundredth)": {"handler": "fail"},
    "failing (a hundredth)": {"failing": True},
}


def _shape(engine: sa.Engine) -> None:
    """A tenth of the jobs paused, a hundredth of another handler, a hundredth failing."""
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE f8a_jobs SET next_run_time = NULL WHERE id LIKE 'stored-%5'")
        )
        connection.execute(
            sa.text("UPDATE f8a_jobs SET handler = 'fail' WHERE id LIKE 'stored-%17'")
        )
        connection.execute(
            sa.text(
                "INSERT INTO f8a_last_runs (job_id, outcome, finished_at) "
                "SELECT id, 'failed', now() FROM f8a_jobs WHERE id LIKE 'stored-%33'"
            )
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sa.text("ANALYZE"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _pages(port: int, path: str, count: int) -> list[float]:
    """Milliseconds per GET of ``path``, one after another on one connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    took = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"GET {path}: {response.status}")
            took.append((time.perf_counter() - started) * 1000)
    finally:
        connection.close()
    return took


def _wait_for_page(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _pages(port, "/healthz", 1)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the dashboard did not answer")


def run(repetitions: int, scale: float, log_dir: Path) -> list[Row]:
    stored = max(1000, int(STORED * scale))
    prefix = unique_prefix()
    commands = f"{prefix}_commands"
    driver = Driver()
    try:
        with fresh_database() as database_url:
            engine = sa.create_engine(database_url)
            far = datetime.now(UTC) + timedelta(days=30)
            fill_worker_store(engine, (far for _ in range(stored)), "stored")
            _shape(engine)
            engine.dispose()
            env = worker_env(database_url, prefix)
            worker = start_worker(env, log_dir)
            port = _free_port()
            ui = Process(
                [sys.executable, "-m", "f8a_jobs_worker", "ui", "--port", str(port)],
                {k: v for k, v in env.items() if k != "F8A_JOBS_DATABASE_URL"},  # no database
                log_dir,
                "ui",
            )
            try:
                wait_ready(driver, commands)
                _wait_for_page(port)
                for path in ("/jobs", "/jobs/stored-1"):  # warm up: connections, templates, caches
                    _pages(port, path, 10)
                c = repeat(repetitions, lambda c: _once(c, driver, commands, port))
                worker.check_alive()
                ui.check_alive()
            finally:
                ui.stop()
                worker.stop()
    finally:
        driver.close()
        delete_queues(commands, f"{prefix}_commands_dead")
        delete_exchanges(f"{prefix}_events", f"{prefix}_flows")
    return _rows(c, stored)


def _latencies(driver: Driver, queue: str, name: str, args: dict[str, Any]) -> list[float]:
    return driver.run(queue, lambda _: command(name, args), REQUESTS, 1).latencies_ms


def _listing(driver: Driver, queue: str, args: dict[str, Any]) -> Callable[[], list[float]]:
    return lambda: _latencies(driver, queue, "job.list", {"limit": PAGE, **args})


def _once(collected: Collector, driver: Driver, queue: str, port: int) -> None:
    measure: dict[str, Callable[[], list[float]]] = {
        "get": lambda: _latencies(driver, queue, "job.get", {"job_id": "stored-1"}),
        "get with runs": lambda: _latencies(
            driver, queue, "job.get", {"job_id": "stored-1", "next_runs": 5}
        ),
        "history": lambda: _latencies(
            driver, queue, "job.history", {"job_id": "stored-1", "limit": 25}
        ),
        "jobs page": lambda: _pages(port, "/jobs", REQUESTS),
        "job page": lambda: _pages(port, "/jobs/stored-1", REQUESTS),
    }
    for name, args in FILTERS.items():
        measure[name] = _listing(driver, queue, args)
    for name, take in measure.items():
        values = take()
        collected.add(f"{name} p50", percentile(values, 50))
        collected.add(f"{name} p99", percentile(values, 99))
    for pct in ("p50", "p99"):  # the commands behind a job page, one after the other
        behind = (
            collected.values[f"get with runs {pct}"][-1] + collected.values[f"history {pct}"][-1]
        )
        collected.add(f"job page commands {pct}", behind)


def _rows(c: Collector, stored: int) -> list[Row]:
    at = f"{stored:,} stored"
    rows = []
    for pct in ("p50", "p99"):
        rows.append(
            Row(
                "6 dashboard",
                f"jobs page {pct}, {at}",
                "ms",
                c[f"jobs page {pct}"],
                c[f"no filter (first page) {pct}"],
                "job.list of 50",
                False,
                goal="< 2 x the command" if pct == "p50" else "",
                goal_met=c[f"jobs page {pct}"].median
                < 2 * c[f"no filter (first page) {pct}"].median
                if pct == "p50"
                else None,
            )
        )
        rows.append(
            Row(
                "6 dashboard",
                f"job page {pct}, {at}",
                "ms",
                c[f"job page {pct}"],
                c[f"job page commands {pct}"],
                "job.get + job.history",
                False,
                goal="< 2 x the commands" if pct == "p50" else "",
                goal_met=c[f"job page {pct}"].median < 2 * c[f"job page commands {pct}"].median
                if pct == "p50"
                else None,
            )
        )
    for name in FILTERS:
        for pct in ("p50", "p99"):
            rows.append(
                Row(
                    "6 dashboard",
                    f"job.list {name} {pct}, {at}",
                    "ms",
                    c[f"{name} {pct}"],
                    c[f"get {pct}"],
                    f"job.get {pct}",
                    False,
                    goal=f"<= 2 x job.get {pct}",
                    goal_met=c[f"{name} {pct}"].median <= 2 * c[f"get {pct}"].median,
                )
            )
    return rows
