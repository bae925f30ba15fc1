"""The raw limit of firing: bare APScheduler 3 on the same PostgreSQL, with the stock SQLAlchemy job store.

Same executor size as the worker (10 threads), same job defaults; the job function only notes how late it
started. No run history, no events, no handler lookup. Prints one JSON line when ``expect`` runs are done.

    python -m bench.bare_scheduler DATABASE_URL EXPECT [PROBE_START_TS PROBE_COUNT PROBE_SPACING_S]

With the probe arguments it first adds PROBE_COUNT one-shot jobs (through ``add_job``, so they are stored)
due every PROBE_SPACING_S seconds from PROBE_START_TS, like the worker's probes.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any

from apscheduler.events import EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from bench import bare_job
from bench.jobfill import BARE_FUNC, BARE_TABLE

_executed: list[float] = []
_done = threading.Event()
_expect = 0
_lock = threading.Lock()


def _on_executed(_event: JobExecutionEvent) -> None:
    with _lock:
        _executed.append(time.time())
        if len(_executed) >= _expect:
            _done.set()


def main(argv: list[str]) -> None:
    global _expect
    url, _expect = argv[0], int(argv[1])
    spawned = time.time()
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=url, tablename=BARE_TABLE)},
        executors={"default": ThreadPoolExecutor(10)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        timezone=UTC,
    )
    scheduler.add_listener(_on_executed, EVENT_JOB_EXECUTED)
    begun = time.perf_counter()
    scheduler.start()
    start_s = time.perf_counter() - begun
    print(json.dumps({"ready": time.time(), "spawned": spawned, "start_s": start_s}), flush=True)
    if len(argv) > 2:
        first, count, spacing = float(argv[2]), int(argv[3]), float(argv[4])
        for n in range(count):
            at = first + n * spacing
            scheduler.add_job(
                BARE_FUNC,
                "date",
                run_date=datetime.fromtimestamp(at, UTC),
                args=(at,),
                id=f"probe-{n}",
            )
    _done.wait(600)
    scheduler.shutdown(wait=True)
    result: dict[str, Any] = {
        "executed": len(_executed),
        "first": min(_executed, default=0.0),
        "last": max(_executed, default=0.0),
        "lateness_ms": bare_job.LATENESS_MS,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
