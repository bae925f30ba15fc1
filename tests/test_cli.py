"""The publisher CLI against a running worker, on each transport: tables, --json, exit codes, DLQ, events."""

from __future__ import annotations

import gc
import json
import subprocess
import sys

import pytest

from f8a_jobs_worker.cli.main import settle_heap
from f8a_jobs_worker.cli.monitor import topic_matches
from tests.helpers import eventually
from tests.messaging import publish_raw
from tests.process import WorkerProcess, clean_env


def test_jobs_commands_tables_json_and_exit_codes(messaging_worker, run_cli) -> None:
    messaging_worker()
    created = run_cli(
        "jobs",
        "create",
        "noop",
        "--job-id",
        "nightly",
        "--periodically",
        "1 day",
        "--when",
        "2099-01-01T00:00:00Z",
        "--kwargs",
        '{"message": "hi"}',
    )
    assert created.exit_code == 0, created.output
    assert "next_run_time:        2099-01-01T00:00:00+00:00" in created.output
    listed = run_cli("jobs", "list")
    assert listed.output.splitlines()[0].split() == [
        "JOB_ID",
        "HANDLER",
        "STATE",
        "NEXT_RUN_TIME",
        "PERIODICALLY",
        "DEFAULT",
    ]
    assert "nightly" in listed.output and "1 of 1 shown" in listed.output
    as_json = json.loads(run_cli("jobs", "get", "nightly", "--json").output)
    assert as_json["job"]["kwargs"] == {"message": "hi"}
    assert "paused" in run_cli("jobs", "pause", "nightly").output
    assert run_cli("jobs", "resume", "nightly").exit_code == 0
    assert run_cli("jobs", "run-now", "nightly").exit_code == 0
    state = run_cli("scheduler", "state").output
    assert "scheduler: running" in state
    replicas = state.splitlines()[state.splitlines().index("") + 1 :]
    assert replicas[0].split() == [
        "ID",
        "HOST",
        "PID",
        "VERSION",
        "STARTED_AT",
        "HEARTBEAT",
        "RUNS_IN_PROGRESS",
    ]
    assert (
        len(replicas) == 2 and replicas[1].split()[1] == "*"
    )  # one replica: the one that answered
    assert "removed: nightly" in run_cli("jobs", "delete", "nightly").output
    missing = run_cli("jobs", "get", "nightly")
    assert (missing.exit_code, "error: job_not_found" in missing.output) == (3, True)
    bad = run_cli("jobs", "create", "noop", "--periodically", "1 month")
    assert bad.exit_code == 5 and "$.args.periodically" in bad.output
    conflict = run_cli(
        "jobs",
        "create",
        "sleep",
        "--job-id",
        "s",
        "--kwargs",
        '{"seconds": 1}',
        "--when",
        "2099-01-01T00:00:00Z",
    )
    assert conflict.exit_code == 0
    assert run_cli("jobs", "create", "noop", "--job-id", "s").exit_code == 4
    assert "removed: nothing" in run_cli("jobs", "clean-failed").output


def test_send_any_command(messaging_worker, run_cli) -> None:
    messaging_worker()
    ok = run_cli("send", "job.list", "--args", '{"job_type": "user"}')
    assert ok.exit_code == 0
    assert json.loads(ok.output)["result"] == {"jobs": [], "jobs_count": 0}
    unknown = run_cli("send", "job.teleport")
    assert unknown.exit_code == 5
    assert json.loads(unknown.output)["error"]["code"] == "unknown_command"
    assert run_cli("send", "job.get", "--args", "{not json").exit_code == 2


def test_dead_letters_list_and_replay(messaging_worker, run_cli, broker_url: str, names) -> None:
    worker = messaging_worker()
    publish_raw(
        broker_url, names.commands, b'{"command": "job.list", "args": {"job_type": "bogus"}}'
    )
    rows = eventually(lambda: json.loads(run_cli("dlq", "list", "--json").output))
    assert [r["reason"] for r in rows] == ["validation_error"]
    again = json.loads(run_cli("dlq", "list", "--json").output)
    assert len(again) == 1  # listing does not remove
    # after "fixing" what made it fail (here: nothing to fix; it fails again), replay sends it back
    replayed = run_cli("dlq", "replay")
    assert "replayed 1 dead letter(s)" in replayed.output
    rows = eventually(lambda: json.loads(run_cli("dlq", "list", "--json").output))
    assert [r["reason"] for r in rows] == ["validation_error"]
    assert worker.service.list_jobs()["jobs_count"] == 0


def test_events_watch_filters_by_routing_key(
    messaging_worker, run_cli, broker_url: str, names, tmp_path
) -> None:
    messaging_worker()
    env = clean_env(
        F8A_JOBS_BROKER_URL=broker_url,
        F8A_JOBS_COMMANDS_QUEUE=names.commands,
        F8A_JOBS_DEAD_LETTER_QUEUE=names.dead,
        F8A_JOBS_EVENTS_EXCHANGE=names.events,
        F8A_JOBS_FLOWS_EXCHANGE=names.flows,
    )
    watch = WorkerProcess(
        [
            sys.executable,
            "-m",
            "f8a_jobs_worker",
            "events",
            "watch",
            "--filter",
            "job.paused",
            "--count",
            "1",
            "--json",
        ],
        tmp_path,
        env,
        name="watch",
    )
    try:
        watch.wait_for("watching")
        run_cli(
            "jobs",
            "create",
            "noop",
            "--job-id",
            "w",
            "--periodically",
            "1 day",
            "--when",
            "2099-01-01T00:00:00Z",
        )
        run_cli("jobs", "pause", "w")
        assert watch.wait(30) == 0
    finally:
        watch.stop()
    lines = [line for line in watch.output.splitlines() if line.startswith("{")]
    event = json.loads(lines[0])
    assert (event["event"], event["job_id"], len(lines)) == ("job.paused", "w", 1)


@pytest.mark.parametrize(
    ("pattern", "key", "matches"),
    [
        ("#", "job.failed", True),
        ("job.*", "job.failed", True),
        ("job.*", "command.rejected", False),
        ("*.failed", "job.failed", True),
        ("job.failed", "job.failed", True),
        ("job", "job.failed", False),
        ("#.rejected", "command.rejected", True),
        ("job.#", "job.failed", True),
    ],
)
def test_topic_patterns(pattern: str, key: str, matches: bool) -> None:
    assert topic_matches(pattern, key) is matches


def test_jobs_list_follows_every_page(messaging_worker, run_cli) -> None:
    worker = messaging_worker()
    for n in range(5):
        worker.service.create_job("noop", job_id=f"p{n}", when="2999-01-01T00:00:00+00:00")
    first = run_cli("jobs", "list", "--limit", "2")
    assert "2 of 5 shown" in first.output and "next page: --after p1" in first.output
    second = run_cli("jobs", "list", "--limit", "2", "--after", "p1")
    assert "p2" in second.output and "p1" not in second.output.replace("--after p1", "")
    every = json.loads(run_cli("jobs", "list", "--limit", "2", "--all", "--json").output)
    assert [job["job_id"] for job in every["jobs"]] == [f"p{n}" for n in range(5)]
    assert "next" not in every
    both = run_cli("jobs", "list", "--offset", "1", "--all")
    assert both.exit_code == 2


def test_what_start_up_built_is_out_of_the_collectors_sight_once_running() -> None:
    """``run`` settles the heap once the worker started: start-up's garbage collected, the rest frozen, so
    full collections under load walk only what was made since."""

    class Garbage:
        pass

    cycle = Garbage()
    cycle.itself = cycle  # type: ignore[attr-defined]  # only the collector frees a cycle
    del cycle
    try:
        settle_heap()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0
    assert not any(type(o) is Garbage for o in gc.get_objects())  # collected first, not frozen


def test_the_command_line_loads_a_subcommand_only_when_it_is_named() -> None:
    """`run` starts without the dashboard's web stack or Alembic (a store at head needs neither); `ui`
    loads its own."""
    program = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from f8a_jobs_worker.cli.main import cli\n"
        "heavy = ('starlette', 'uvicorn', 'jinja2', 'alembic')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "CliRunner().invoke(cli, ['ui', '--help'], catch_exceptions=False)\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines() == ["[]", "['jinja2', 'starlette', 'uvicorn']"]
