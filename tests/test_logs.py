"""The worker's log lines are written by one thread (``logs.configure(background=True)``): every line of
every thread arrives, JSON lines keep their fields and their exception, and the last lines are written at
exit."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import logging, threading
from f8a_jobs_worker import logs
from f8a_jobs_worker.logs import job_fields
logs.configure("INFO", "json", background=True)
log = logging.getLogger("f8a_jobs_worker.test")

def many(n):
    for i in range(500):
        log.info("line %d of thread %d", i, n, extra=job_fields(f"job-{n}", "noop"))

threads = [threading.Thread(target=many, args=(n,)) for n in range(4)]
for t in threads: t.start()
for t in threads: t.join()
try:
    raise ValueError("boom")
except ValueError:
    log.exception("failed on purpose", extra=job_fields("job-x", "fail"))
log.warning("the last line, written at exit")
"""


def test_background_lines_all_arrive_with_their_fields_and_exceptions() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True
    )
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert len(lines) == 4 * 500 + 2
    for n in range(4):
        mine = [line for line in lines if line.get("job_id") == f"job-{n}"]
        assert [line["message"] for line in mine] == [f"line {i} of thread {n}" for i in range(500)]
        assert {line["handler"] for line in mine} == {"noop"}
    failed = next(line for line in lines if line["message"] == "failed on purpose")
    assert failed["level"] == "ERROR" and failed["job_id"] == "job-x"
    assert "ValueError: boom" in failed["exc_info"]
    assert lines[-1]["message"] == "the last line, written at exit"
