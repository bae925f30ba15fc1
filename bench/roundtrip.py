"""Benchmark 1: command round trips (``job.get``, ``job.create``) at 1 and 50 in flight, against a bare echo
server on the same broker with the same request bytes and reply sizes."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.driver import Driver, command, wait_ready
from bench.harness import (
    RABBITMQ_URL,
    Collector,
    CpuMeter,
    Row,
    delete_exchanges,
    delete_queues,
    fresh_database,
    python_module,
    repeat,
    start_worker,
    unique_prefix,
    worker_env,
)

#: the worker's documented default (F8A_JOBS_PREFETCH), set on both the worker and the echo server
PREFETCH = 50
CASES = [("job.get", 1), ("job.get", 50), ("job.create", 1), ("job.create", 50)]
#: job.create as users send it: a running periodic job (its first run at once, as without ``when``) and a
#: one-shot job due tomorrow, beside the paused ones above (which the scheduler never has to plan)
LIVE_CASES = [("job.create running", 1), ("job.create running", 50)]
LIVE_CASES += [("job.create one-shot", 1), ("job.create one-shot", 50)]
#: a second load driver, in Node.js with amqplib (``make node-packages`` installs its package)
NODE_DRIVER = Path(__file__).resolve().parent / "node" / "driver.js"


def _slug(name: str) -> str:
    return name.replace(" ", "-").replace(".", "-")


def _bodies(name: str, tag: str) -> Any:
    if name == "job.get":
        return lambda _i: command("job.get", {"job_id": "bench-get"})
    if name == "job.create running":
        return lambda i: command(
            "job.create", {"handler": "noop", "job_id": f"{tag}-{i}", "periodically": "1 day"}
        )
    if name == "job.create one-shot":
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        return lambda i: command(
            "job.create", {"handler": "noop", "job_id": f"{tag}-{i}", "when": tomorrow}
        )
    return lambda i: command(
        "job.create",
        {"handler": "noop", "job_id": f"{tag}-{i}", "periodically": "1 day", "state": "paused"},
    )


def run(repetitions: int, scale: float, log_dir: Path) -> list[Row]:
    # one in flight: 1,000 round trips, so that p99 is the tenth slowest, not the third
    counts = {1: max(50, int(1000 * scale)), 50: max(200, int(2000 * scale))}
    prefix = unique_prefix()
    commands, echo = f"{prefix}_commands", f"{prefix}_echo"
    with fresh_database() as database_url:
        worker = start_worker(
            worker_env(database_url, prefix, F8A_JOBS_PREFETCH=str(PREFETCH)), log_dir
        )
        echo_server = python_module(
            "bench.echo", RABBITMQ_URL, echo, str(PREFETCH), log_dir=log_dir, name="echo"
        )
        driver = Driver()
        try:
            wait_ready(driver, commands)
            created = driver.call(
                commands,
                command(
                    "job.create",
                    {"handler": "noop", "job_id": "bench-get", "periodically": "1 day"},
                ),
            )
            assert created["ok"], created
            sizes = {
                name: len(driver.run(commands, _bodies(name, f"size-{n}"), 1, 1).replies[0])
                for n, name in enumerate(
                    ("job.get", "job.create", "job.create running", "job.create one-shot")
                )
            }
            for name in sizes:  # warm both sides up: connections, caches, JIT-free but lazy imports
                driver.run(commands, _bodies(name, f"warm-{_slug(name)}"), 50, 10)
                driver.run(echo, _bodies(name, "w"), 50, 10, {"x-bench-reply-bytes": sizes[name]})
            rep = 0

            def once(collected: Collector) -> None:
                nonlocal rep
                rep += 1
                for name, in_flight in CASES + LIVE_CASES:
                    count = counts[in_flight]
                    tag = f"r{rep}-{in_flight}-{_slug(name)}"
                    cores_bound = in_flight > 1  # where CPU per command is reported
                    project_cpu = CpuMeter(worker.pid, cores_bound)
                    limit_cpu = CpuMeter(echo_server.pid, cores_bound)
                    with project_cpu.measure():
                        project = driver.run(commands, _bodies(name, tag), count, in_flight)
                    replies = [json.loads(body) for body in project.replies]
                    failed = [r for r in replies if not r.get("ok")]
                    if failed:
                        raise RuntimeError(f"{len(failed)} {name} commands failed: {failed[0]}")
                    with limit_cpu.measure():
                        limit = driver.run(
                            echo,
                            _bodies(name, tag),
                            count,
                            in_flight,
                            {"x-bench-reply-bytes": sizes[name]},
                        )
                    key = f"{name} @{in_flight}"
                    for side, result, cpu in (
                        ("project", project, project_cpu),
                        ("limit", limit, limit_cpu),
                    ):
                        collected.add(f"{key} rate {side}", result.rate)
                        collected.add(f"{key} p50 {side}", result.p50)
                        collected.add(f"{key} p99 {side}", result.p99)
                        if cpu.enabled:
                            parts = cpu.per_command_us(count)
                            collected.add(f"{key} cpu server {side}", parts["server"])
                            collected.add(f"{key} cpu all {side}", sum(parts.values()))
                            collected.add(f"{key} ceiling {side}", cpu.ceiling(count))

                # the same at 50 in flight, seen by a driver in another language and client library
                for name in ("job.get", "job.create"):
                    count = counts[50]
                    project_node = node_driver(commands, name, count, 50, f"n{rep}")
                    if project_node["failed"]:
                        raise RuntimeError(f"{name} via node: {project_node['first_failure']}")
                    limit_node = node_driver(echo, name, count, 50, f"n{rep}", sizes[name])
                    for side, summary in (("project", project_node), ("limit", limit_node)):
                        collected.add(f"{name} @50 node rate {side}", summary["rate"])

            collected = repeat(repetitions, once)
            worker.check_alive()
        finally:
            driver.close()
            echo_server.stop()
            worker.stop()
            delete_queues(commands, f"{prefix}_commands_dead", echo)
            delete_exchanges(f"{prefix}_events", f"{prefix}_flows")
    return _rows(collected)


def node_driver(
    queue: str, name: str, count: int, in_flight: int, tag: str, reply_bytes: int | None = None
) -> dict[str, Any]:
    """A run of ``bench/node/driver.js`` (Node.js, amqplib): its JSON summary."""
    args = ["node", str(NODE_DRIVER), RABBITMQ_URL, queue, name, str(count), str(in_flight), tag]
    if reply_bytes is not None:
        args.append(str(reply_bytes))
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the node driver failed: {done.stderr.strip()[-2000:]}")
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return summary


def _cpu_rows(c: Collector, key: str) -> list[Row]:
    """Where the CPU went: the server's (worker or echo) per command, every party's (server, driver,
    RabbitMQ, PostgreSQL) per command, and the rate the machine's cores could carry at that cost."""
    return [
        Row(
            "1 commands",
            f"{key} server CPU per command",
            "us",
            c[f"{key} cpu server project"],
            c[f"{key} cpu server limit"],
            "echo",
            higher_is_better=False,
        ),
        Row(
            "1 commands",
            f"{key} CPU per command, all processes",
            "us",
            c[f"{key} cpu all project"],
            c[f"{key} cpu all limit"],
            "echo",
            higher_is_better=False,
        ),
        Row(
            "1 commands",
            f"{key} CPU ceiling (cores / CPU per command)",
            "cmd/s",
            c[f"{key} ceiling project"],
            c[f"{key} ceiling limit"],
            "echo",
        ),
    ]


def _reach(c: Collector, key: str) -> Row:
    """The most the machine's cores could carry at the CPU a command cost every process, against the echo's
    rate: below 0.5 x, no layout of the worker (more threads, more processes) reaches half the echo here."""
    return Row(
        "1 commands",
        f"{key} CPU ceiling against the echo's rate",
        "cmd/s",
        c[f"{key} ceiling project"],
        c[f"{key} rate limit"],
        "echo's rate",
    )


def _rows(c: Collector) -> list[Row]:
    rows = []
    for name, in_flight in LIVE_CASES:
        rate = Row(
            "1 commands",
            f"{name} @{in_flight} in flight",
            "cmd/s",
            c[f"{name} @{in_flight} rate project"],
            c[f"{name} @{in_flight} rate limit"],
            "echo",
        )
        if in_flight == 50:
            met = (rate.ratio or 0.0) >= 0.5
            rate = Row(**{**rate.__dict__, "goal": ">= 0.5 x echo", "goal_met": met})
        rows.append(rate)
        if in_flight == 50:
            rows.extend(_cpu_rows(c, f"{name} @{in_flight}"))
            rows.append(_reach(c, f"{name} @{in_flight}"))
    for name, in_flight in CASES:
        key = f"{name} @{in_flight}"
        rate = Row(
            "1 commands",
            f"{key} in flight",
            "cmd/s",
            c[f"{key} rate project"],
            c[f"{key} rate limit"],
            "echo",
        )
        if key == "job.get @50":
            ratio = rate.ratio or 0.0
            rate = Row(**{**rate.__dict__, "goal": ">= 0.9 x echo", "goal_met": ratio >= 0.9})
        if key == "job.create @50":
            goal = ">= 2,000/s"
            # a goal above what the echo answers on this machine says so
            if rate.limit is not None and rate.limit.median < 2000:
                goal += f" (echo itself {rate.limit.median:,.0f}/s)"
            rate = Row(**{**rate.__dict__, "goal": goal, "goal_met": rate.project.median >= 2000})
        rows.append(rate)
        for pct in ("p50", "p99"):
            latency = Row(
                "1 commands",
                f"{key} latency {pct}",
                "ms",
                c[f"{key} {pct} project"],
                c[f"{key} {pct} limit"],
                "echo",
                higher_is_better=False,
            )
            if key == "job.get @1" and pct == "p99":  # sequential job.get
                met = (latency.ratio or 0.0) <= 2.0
                latency = Row(**{**latency.__dict__, "goal": "<= 2 x echo", "goal_met": met})
            rows.append(latency)
        if in_flight > 1:
            rows.extend(_cpu_rows(c, key))
    for name in ("job.get", "job.create"):
        rows.append(
            Row(
                "1 commands",
                f"{name} @50 in flight, node driver",
                "cmd/s",
                c[f"{name} @50 node rate project"],
                c[f"{name} @50 node rate limit"],
                "echo",
            )
        )
    return rows
