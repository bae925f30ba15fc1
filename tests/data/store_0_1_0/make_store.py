"""Write a job store as release 0.1.0 (commit b3e7ae8) leaves it, with data in every table, and dump it.

This ran once, against 0.1.0, to make the two dumps beside it; it imports that release's modules and is kept
as the record of how the data was made (tests/test_schema_versions.py loads the dumps).

Run from a checkout of 0.1.0 with its test handlers on the path:

    PYTHONPATH=tests/plugins .venv/bin/python make_store_0_1_0.py OUTDIR

It writes OUTDIR/postgresql.sql (pg_dump of schema ``store_0_1_0``, as INSERTs, without psql's
meta-commands) and OUTDIR/sqlite.sql (the same store on SQLite, as ``sqlite3 .dump`` writes it).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from f8a_jobs_worker.commands.dispatch import CommandApplier
from f8a_jobs_worker.commands.envelope import Envelope
from f8a_jobs_worker.config import Settings
from f8a_jobs_worker.events import MemoryEventSink
from f8a_jobs_worker.persistence.tables import (
    backfill_runs,
    backfills,
    buffered_runs,
    outbox,
    run_ledger,
)
from f8a_jobs_worker.worker import Worker

SCHEMA = "store_0_1_0"
DEFAULT_JOB = """job_id: nightly-default
handler: noop
kwargs: {message: from the default job file}
cron: "30 2 * * *"
misfire_grace_time: 600
"""


def fill(url: str, jobs_dir: Path) -> None:
    sink = MemoryEventSink()
    worker = Worker(Settings(database_url=url, default_jobs_dir=jobs_dir, threads=2), sink=sink)
    worker.start()
    service = worker.service
    later = "2031-03-01T08:00:00+00:00"
    service.create_job(
        "noop", {"message": "hourly"}, job_id="hourly", periodically="1 hour", when=later
    )
    service.create_job("noop", {}, job_id="weekdays", cron="0 6 * * 1-5", jitter=30)
    service.create_job("noop", {}, job_id="once", when="2031-01-01T00:00:00Z")
    service.create_job("noop", {}, job_id="paused", periodically="1 day", state="paused")
    service.create_job(
        "fail",
        {"message": "boom"},
        job_id="failing",
        periodically="1 day",
        when=later,
        pause_after_failures=5,
        overlap="buffer_one",
        on_interrupt="retry",
        misfire_grace_time=None,
    )
    service.create_job(
        "flow_scheduling",
        {
            "flow_arguments": [{"ecosystem": "npm", "name": "serve-static", "version": "1.7.1"}],
            "flow_name": "bayesianFlow",
        },
        job_id="flows",
        periodically="1 week",
        when=later,
        overlap="allow",
        overlap_limit=3,
        state="paused",
    )
    # replies stored for write commands, as the consumer stores them
    applier = CommandApplier(service)
    applier.apply_many(
        [
            Envelope(
                "cmd-create-1",
                "replies_a",
                "corr-1",
                "job.create",
                {
                    "handler": "noop",
                    "job_id": "from-command",
                    "periodically": "2 hours",
                    "when": later,
                },
            ),
            Envelope("cmd-pause-1", "replies_a", "corr-2", "job.pause", {"job_id": "hourly"}),
            Envelope("cmd-get-missing", "replies_a", "corr-3", "job.delete", {"job_id": "nope"}),
        ]
    )
    service.resume_job("hourly")
    # runs: a failure (with traceback and a failure streak), an executed run, a backfill of past runs
    service.run_job_now("failing")
    sink.wait_for("job.failed", "failing")
    service.run_job_now("once")
    sink.wait_for("job.executed", "once")
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    service.backfill_job("from-command", (end - timedelta(hours=6)).isoformat(), end.isoformat())
    sink.wait_for("job.executed", "from-command", count=3)
    time.sleep(1.0)
    worker.stop()
    with worker.engine.begin() as connection:
        # what a replica killed with kill -9 leaves: its run in the ledger, an event not yet sent
        connection.execute(
            run_ledger.insert().values(
                run_id="gone-run-1",
                job_id="hourly",
                handler="noop",
                kwargs={"message": "hourly"},
                scheduled_at=datetime(2026, 12, 6, 23, 0, tzinfo=UTC),
                submitted_at=datetime(2026, 12, 6, 23, 0, 1, tzinfo=UTC),
                on_interrupt="report",
                worker="gone-host:1:deadbeef",
            )
        )
        connection.execute(
            outbox.insert().values(
                kind="event",
                name="job.created",
                message_id="unsent-event-1",
                command_id=None,
                reply_to=None,
                correlation_id=None,
                body=json.dumps(
                    {
                        "event": "job.created",
                        "event_id": "unsent-event-1",
                        "at": "2026-12-06T23:00:00+00:00",
                        "job_id": "hourly",
                    }
                ),
                created_at=datetime(2026, 12, 6, 23, 0, tzinfo=UTC),
                published_at=None,
                replica="gone-host:1:deadbeef",
            )
        )
        # a backfill with a run still to start, a run kept by buffer_one, a job a deploy broke
        connection.execute(
            backfills.insert().values(
                backfill_id="backfill-pending",
                job_id="hourly",
                concurrency=1,
                created_at=datetime(2026, 12, 6, 23, 0, tzinfo=UTC),
            )
        )
        connection.execute(
            backfill_runs.insert().values(
                backfill_id="backfill-pending",
                seq=0,
                scheduled_at=datetime(2026, 12, 6, 22, 0, tzinfo=UTC),
                run_id=None,
            )
        )
        connection.execute(
            buffered_runs.insert().values(
                job_id="failing", scheduled_at=datetime(2026, 12, 6, 23, 30, tzinfo=UTC)
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO f8a_jobs (id, next_run_time, job_state, handler, is_default, broken) "
                "VALUES ('broken-by-deploy', 1924992000.0, :state, 'noop', false, NULL)"
            ),
            {"state": b"cgone_module_of_an_old_release\nThing\n."},
        )
    worker.engine.dispose()


def main() -> None:
    out = Path(sys.argv[1]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    jobs_dir = out / "default_jobs_used"
    jobs_dir.mkdir(exist_ok=True)
    (jobs_dir / "nightly.yaml").write_text(DEFAULT_JOB)
    admin = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    with admin.begin() as connection:
        connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
        connection.execute(sa.text(f'CREATE SCHEMA "{SCHEMA}"'))
    url = f"postgresql://postgres@127.0.0.1:5432/postgres?options=-csearch_path%3D{SCHEMA}"
    fill(url, jobs_dir)
    dump = subprocess.run(
        [
            "pg_dump",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "--schema",
            SCHEMA,
            "--no-owner",
            "--no-privileges",
            "--inserts",
            "postgres",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    # psql's meta-commands (\restrict) are not SQL: the tests run the dump through the driver
    lines = [line for line in dump.splitlines() if not line.startswith("\\")]
    (out / "postgresql.sql").write_text("\n".join(lines) + "\n")
    with admin.begin() as connection:
        connection.execute(sa.text(f'DROP SCHEMA "{SCHEMA}" CASCADE'))
    sqlite_file = out / "store.sqlite"
    sqlite_file.unlink(missing_ok=True)
    fill(f"sqlite:///{sqlite_file}", jobs_dir)
    database = sqlite3.connect(sqlite_file)
    (out / "sqlite.sql").write_text("\n".join(database.iterdump()) + "\n")
    database.close()
    for leftover in out.glob("store.sqlite*"):
        leftover.unlink()
    (jobs_dir / "nightly.yaml").unlink()
    jobs_dir.rmdir()


if __name__ == "__main__":
    main()
