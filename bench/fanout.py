"""Benchmark 2: a ``flow_scheduling`` job whose ``$filter`` matches N rows (100,000 by default), until every flow
message is confirmed, against a bare kombu publisher of the same bodies with and without confirms."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from kombu import Connection, Exchange, Producer, Queue

from bench.driver import Driver, command, wait_ready
from bench.harness import (
    RABBITMQ_URL,
    Collector,
    Row,
    Stats,
    delete_exchanges,
    delete_queues,
    fresh_database,
    peak_rss_mb,
    repeat,
    rss_mb,
    start_worker,
    unique_prefix,
    worker_command,
    worker_env,
)

QUERY = {
    "table": "versions",
    "joins": [
        {"table": "packages", "on": {"versions.package_id": "packages.id"}},
        {"table": "ecosystems", "on": {"packages.ecosystem_id": "ecosystems.id"}},
    ],
    "select": [
        "ecosystems.name as ecosystem",
        "packages.name as name",
        "versions.identifier as version",
    ],
    "where": {"versions.synced2graph": False},
}


def fill(database_url: str, rows: int) -> None:
    """``rows`` unsynced versions of rows/10 npm packages, written by the database itself, in the analytics
    tables the worker's ``demo-data`` command makes (its sample rows replaced)."""
    worker_command("demo-data", "--database-url", database_url)
    engine = sa.create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "TRUNCATE package_worker_results, package_analyses, worker_results, analyses, "
                "monitored_upstreams, versions, packages, ecosystems"
            )
        )
        connection.execute(
            sa.text("INSERT INTO ecosystems (id, name, _backend) VALUES (1, 'npm', 'npm')")
        )
        connection.execute(
            sa.text(
                "INSERT INTO packages (id, ecosystem_id, name) "
                "SELECT n, 1, 'package-' || n FROM generate_series(1, :n) n"
            ),
            {"n": max(1, rows // 10)},
        )
        connection.execute(
            sa.text(
                "INSERT INTO versions (id, package_id, identifier, synced2graph) "
                "SELECT n, 1 + n % :p, '1.0.' || n, false FROM generate_series(1, :n) n"
            ),
            {"n": rows, "p": max(1, rows // 10)},
        )
    engine.dispose()


def _wait_depth(
    conn: Connection, name: str, count: int, timeout: float = 120.0, poll: float = 0.05
) -> None:
    """Until the queue ``name`` holds ``count`` messages, asked every ``poll`` seconds on one channel."""
    channel = conn.channel()
    try:
        deadline = time.monotonic() + timeout
        while (depth := int(channel.queue_declare(name, passive=True).message_count)) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name}: {depth} of {count} messages")
            time.sleep(poll)
    finally:
        channel.close()


def bare_publish(
    body: bytes,
    count: int,
    exchange: str,
    confirms: bool,
    arrived: Callable[[], None] = lambda: None,
) -> float:
    """Seconds for a bare kombu producer to publish ``count`` copies of ``body``, and for ``arrived`` to
    return (without confirms a publish returns once the socket took the message, not the queue)."""
    options = {"confirm_publish": True} if confirms else {}
    with Connection(RABBITMQ_URL, transport_options=options) as conn:
        producer = Producer(conn.channel())
        target = Exchange(exchange, type="topic", durable=True)
        started = time.perf_counter()
        for _ in range(count):
            producer.publish(
                body,
                exchange=target,
                routing_key="bayesianFlow",
                content_type="application/json",
                content_encoding="utf-8",
                delivery_mode=2,
            )
        arrived()
        return time.perf_counter() - started


def run(repetitions: int, scale: float, log_dir: Path) -> list[Row]:
    rows = max(1000, int(100_000 * scale))
    confirmed_rows = max(
        1000, rows // 5
    )  # kombu waits for each confirm: a fifth is enough for a rate
    prefix = unique_prefix()
    commands, flows, events = f"{prefix}_commands", f"{prefix}_flows", f"{prefix}_events"
    sink, bare_sink = f"{prefix}_flow_sink", f"{prefix}_bare_sink"
    with fresh_database() as database_url:
        fill(database_url, rows)
        worker = start_worker(worker_env(database_url, prefix), log_dir)
        driver = Driver()
        conn = Connection(RABBITMQ_URL)
        channel = conn.channel()
        for exchange, queue in ((flows, sink), (f"{prefix}_bare", bare_sink)):
            Queue(queue, Exchange(exchange, type="topic", durable=True), routing_key="#")(
                channel
            ).declare()
        executed = executed_events(channel, events, prefix)
        try:
            wait_ready(driver, commands)
            baseline_rss = rss_mb(worker.pid)
            body: bytes = b""
            rep = 0

            def once(collected: Collector) -> None:
                nonlocal body, rep
                rep += 1
                channel.queue_purge(sink)
                reply = driver.call(commands, fan_out_job(f"fan-{rep}"))
                assert reply["ok"], reply
                event = _wait_event(conn, executed, f"fan-{rep}")
                seconds = float(event["duration_s"])
                dispatched = int(event["summary"]["dispatched"])
                if dispatched != rows:
                    raise RuntimeError(f"dispatched {dispatched} of {rows}")
                _wait_depth(conn, sink, rows)
                if not body:
                    message = channel.basic_get(sink, no_ack=True)
                    raw = message.body
                    body = raw.encode() if isinstance(raw, str) else bytes(raw)
                channel.queue_purge(sink)
                collected.add("project", rows / seconds)

                channel.queue_purge(bare_sink)
                in_queue = partial(_wait_depth, conn, bare_sink, rows, poll=0.002)
                bare = bare_publish(body, rows, f"{prefix}_bare", False, in_queue)
                channel.queue_purge(bare_sink)
                collected.add("unconfirmed", rows / bare)
                bare = bare_publish(body, confirmed_rows, f"{prefix}_bare", confirms=True)
                channel.queue_purge(bare_sink)
                collected.add("confirmed", confirmed_rows / bare)
                collected.add("rss", peak_rss_mb(worker.pid))

            collected = repeat(repetitions, once)
            worker.check_alive()
        finally:
            driver.close()
            worker.stop()
            conn.release()
            delete_queues(commands, f"{prefix}_commands_dead", sink, bare_sink)
            delete_exchanges(events, flows, f"{prefix}_bare")
    c = collected
    ratio_to_unconfirmed = c["project"].median / c["unconfirmed"].median
    return [
        Row(
            "2 fan-out",
            f"{rows:,} flow runs, all confirmed",
            "msg/s",
            c["project"],
            c["unconfirmed"],
            "bare, no confirms",
            goal=">= 0.8 x unconfirmed",
            goal_met=ratio_to_unconfirmed >= 0.8,
        ),
        Row(
            "2 fan-out",
            f"{rows:,} flow runs, all confirmed",
            "msg/s",
            c["project"],
            c["confirmed"],
            "bare, confirm each",
        ),
        Row(
            "2 fan-out",
            "worker peak RSS",
            "MiB",
            c["rss"],
            Stats((baseline_rss,)),
            "worker idle",
            higher_is_better=False,
            goal="<= 100 MiB",
            goal_met=c["rss"].median <= 100,
        ),
    ]


def fan_out_job(job_id: str) -> dict[str, Any]:
    """The job.create command of a flow_scheduling job whose $filter matches every filled row."""
    return command(
        "job.create",
        {
            "handler": "flow_scheduling",
            "job_id": job_id,
            "kwargs": {
                "flow_name": "bayesianFlow",
                "flow_arguments": [{"$filter": QUERY, "force": True}],
            },
        },
    )


def executed_events(channel: Any, events: str, prefix: str) -> Any:
    """A queue of the run's own that gets the worker's ``job.executed`` events (declared)."""
    queue = Queue(
        f"{prefix}_executed",
        Exchange(events, type="topic", durable=True),
        routing_key="job.executed",
        durable=False,
        auto_delete=True,
    )(channel)
    queue.declare()
    return queue


def _wait_event(conn: Connection, queue: Queue, job_id: str, timeout: float = 600.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = queue.get(no_ack=True)
        if message is None:
            time.sleep(0.05)
            continue
        event = json.loads(message.body)
        if event.get("job_id") == job_id:
            return event
    raise TimeoutError(f"no job.executed for {job_id}")
