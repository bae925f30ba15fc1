"""A paired A/B of one command's latency: a worker of this checkout and one of another (``--base``, a
``git worktree`` of the commit before, say), each on a database of its own with the same jobs stored, asked
one command at a time in turn (the order flipped every round), so the machine's drift, which on a shared VM
is larger than most changes, falls on both alike.

    git worktree add /tmp/base HEAD~1
    python -m bench.paired --base /tmp/base --command job.get
    python -m bench.paired --base /tmp/base --command job.list --stored 100000 --count 1000
    python -m bench.paired --base /tmp/base --command start-up --count 7

``start-up`` times a worker of each side in turn from spawn to its first answer, on one database (the first
start also upgrades it, one reading the median is not moved by).

Prints one JSON document: p50, p90 and p99 in ms per side (for start-up the median and every reading, in
s), and this side's over the base's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

from bench.driver import Driver, command, wait_ready
from bench.harness import ROOT, fresh_database, percentile, start_worker, unique_prefix, worker_env
from bench.jobfill import fill_worker_store

#: what each command asks for, of the jobs stored (``stored-0`` ... by bench.jobfill)
ARGS: dict[str, dict[str, Any]] = {"job.get": {"job_id": "stored-0"}, "job.list": {"limit": 100}}
WARM_UP = 100
T = TypeVar("T")


def _in_turn(sides: dict[str, T], round_: int) -> list[tuple[str, T]]:
    """The sides in the order of round ``round_``: flipped every round, so neither is always first."""
    order = list(sides.items())
    return order if round_ % 2 else order[::-1]


def paired(base: Path, name: str, count: int, stored: int, log_dir: Path) -> dict[str, Any]:
    """Latencies of ``count`` ``name`` commands to each side, taken in turn."""
    sides = {"base": base, "this": ROOT}
    far = datetime.now(UTC) + timedelta(days=30)
    due = [far + timedelta(seconds=n) for n in range(max(stored, 1))]
    with ExitStack() as stack:
        queues, workers = {}, []
        for side, checkout in sides.items():
            url = stack.enter_context(fresh_database())
            engine = sa.create_engine(url)
            fill_worker_store(engine, due, "stored")
            engine.dispose()
            prefix = unique_prefix()
            worker = start_worker(worker_env(url, prefix), log_dir, checkout=checkout)
            stack.callback(worker.stop)
            workers.append(worker)
            queues[side] = f"{prefix}_commands"
        driver = Driver()
        stack.callback(driver.close)
        for queue in queues.values():
            wait_ready(driver, queue)
        latencies: dict[str, list[float]] = {side: [] for side in sides}
        for n in range(WARM_UP + count):
            for side, queue in _in_turn(queues, n):
                started = time.perf_counter()
                reply = driver.call(queue, command(name, ARGS[name]))
                assert reply["ok"], reply
                if n >= WARM_UP:
                    latencies[side].append(1000 * (time.perf_counter() - started))
    report: dict[str, Any] = {"command": name, "count": count, "stored": stored}
    for side, values in latencies.items():
        report[side] = {f"p{q}_ms": percentile(values, q) for q in (50, 90, 99)}
    report["this/base"] = {key: report["this"][key] / report["base"][key] for key in report["this"]}
    return report


def start_ups(base: Path, count: int, log_dir: Path) -> dict[str, Any]:
    """Seconds from spawn to the first answer of ``count`` workers of each side, started in turn."""
    sides = {"base": base, "this": ROOT}
    seconds: dict[str, list[float]] = {side: [] for side in sides}
    with fresh_database() as url:
        driver = Driver()
        try:
            for n in range(count):
                for side, checkout in _in_turn(sides, n):
                    prefix = unique_prefix()
                    worker = start_worker(worker_env(url, prefix), log_dir, checkout=checkout)
                    try:
                        wait_ready(driver, f"{prefix}_commands")
                        seconds[side].append(time.perf_counter() - worker.started)
                    finally:
                        worker.stop()
        finally:
            driver.close()
    report: dict[str, Any] = {"command": "start-up", "count": count}
    for side, values in seconds.items():
        report[side] = {"median_s": statistics.median(values), "all_s": values}
    report["this/base"] = {"median_s": report["this"]["median_s"] / report["base"]["median_s"]}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.paired", description=__doc__)
    parser.add_argument("--base", type=Path, required=True, help="the other checkout")
    parser.add_argument("--command", choices=[*sorted(ARGS), "start-up"], default="job.get")
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--stored", type=int, default=1000)
    args = parser.parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix="f8a-paired-"))
    if args.command == "start-up":
        report = start_ups(args.base.resolve(), args.count, log_dir)
    else:
        report = paired(args.base.resolve(), args.command, args.count, args.stored, log_dir)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
