"""The wire contract (docs/messages.md, schemas/) end to end, once per transport: RabbitMQ, SQS (moto's
server) and the embedded transport. The client side knows only the contract: envelopes out, replies and events
in, each checked against its schema."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kombu import Queue

from f8a_jobs_worker.client import Client
from f8a_jobs_worker.errors import JobNotFound
from f8a_jobs_worker.validation import file_validator, violations
from tests.helpers import records
from tests.messaging import EventWatcher, body_of, kombu_connection, publish_raw, read_queue

LATER = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0).isoformat()


def valid(schema: str, instance: Any) -> Any:
    found = violations(file_validator(schema), instance)
    assert found == [], f"{schema}: {found}"
    return instance


def call(client: Client, command: str, **args: Any) -> dict[str, Any]:
    """A command whose reply must be ok; reply and result are checked against their schemas."""
    reply = valid("reply.json", client.request(command, args))
    assert reply["ok"], reply
    return valid(f"results/{command}.json", reply["result"])


def error_of(client: Client, command: str, **args: Any) -> dict[str, Any]:
    reply = valid("reply.json", client.request(command, args))
    assert reply["ok"] is False, reply
    return reply["error"]


def test_job_lifecycle_and_its_events(
    messaging_worker, client, watcher: EventWatcher, tmp_path: Path
) -> None:
    messaging_worker()
    out = tmp_path / "runs.jsonl"
    job = call(
        client,
        "job.create",
        handler="record",
        kwargs={"path": str(out)},
        job_id="j",
        periodically="1 day",
        when=LATER,
    )["job"]
    assert (job["job_id"], job["state"], job["next_run_time"]) == ("j", "running", LATER)
    assert call(client, "job.get", job_id="j")["job"] == job
    listed = call(client, "job.list")
    assert (listed["jobs_count"], [j["job_id"] for j in listed["jobs"]]) == (1, ["j"])
    assert call(client, "job.pause", job_id="j")["job"]["state"] == "paused"
    assert call(client, "job.resume", job_id="j")["job"]["next_run_time"] == LATER
    assert call(client, "job.run_now", job_id="j")["job"]["job_id"] == "j"
    executed = watcher.wait_for("job.executed", "j")[0]
    assert executed["duration_s"] >= 0 and executed["summary"] == {"written": None}
    assert len(records(out)) == 1
    runs = call(client, "job.history", job_id="j")["runs"]
    assert [r["outcome"] for r in runs] == ["executed"]
    assert call(client, "job.delete", job_id="j") == {"removed": ["j"]}
    with pytest.raises(JobNotFound):
        client.call("job.get", job_id="j")
    for name in ("job.created", "job.paused", "job.resumed", "job.executed", "job.deleted"):
        for event in watcher.wait_for(name, "j"):
            valid(f"events/{name}.json", event)


def test_failed_and_missed_runs_are_evented(
    messaging_worker, client, watcher: EventWatcher
) -> None:
    messaging_worker()
    call(client, "job.create", handler="fail", kwargs={"message": "no disk"}, job_id="bad")
    failed = valid("events/job.failed.json", watcher.wait_for("job.failed", "bad")[0])
    assert failed["error"] == "RuntimeError: no disk" and "RuntimeError" in failed["traceback"]
    failures = call(client, "job.list", job_type="failed")
    assert [f["job_id"] for f in failures["jobs"]] == [failed["failure_id"]]
    assert call(client, "jobs.clean_failed") == {"removed": [failed["failure_id"]]}
    # a run that falls due while the previous one still runs is missed
    call(
        client,
        "job.create",
        handler="sleep",
        kwargs={"seconds": 2.5},
        job_id="slow",
        periodically="1",
    )
    missed = valid("events/job.missed.json", watcher.wait_for("job.missed", "slow")[0])
    assert missed["reason"] == "the previous run was still in progress"
    call(client, "job.delete", job_id="slow")


def test_scheduler_commands(messaging_worker, client, watcher: EventWatcher) -> None:
    messaging_worker()
    assert call(client, "scheduler.state")["state"] == "running"
    assert call(client, "scheduler.pause") == {"state": "paused"}
    assert call(client, "scheduler.state")["state"] == "paused"
    assert call(client, "scheduler.resume") == {"state": "running"}
    valid("events/scheduler.paused.json", watcher.wait_for("scheduler.paused")[0])
    valid("events/scheduler.resumed.json", watcher.wait_for("scheduler.resumed")[0])


@pytest.mark.parametrize(
    ("command", "args", "code", "path"),
    [
        ("job.create", {"handler": "teleport"}, "unknown_handler", None),
        ("job.get", {"job_id": "nope"}, "job_not_found", None),
        (
            "job.create",
            {"handler": "noop", "periodically": "1 month"},
            "invalid_schedule",
            "$.args.periodically",
        ),
        ("job.create", {"handler": "noop", "cron": "* * *"}, "invalid_schedule", "$.args.cron"),
        (
            "job.create",
            {"handler": "noop", "kwargs": {"colour": "red"}},
            "validation_error",
            "$.args.kwargs",
        ),
        ("job.create", {"handler": "record", "kwargs": {}}, "validation_error", "$.args.kwargs"),
        ("job.list", {"job_type": "weird", "limit": -1}, "validation_error", "$.args.job_type"),
        ("job.pause", {}, "validation_error", "$.args"),
        ("job.frobnicate", {}, "unknown_command", "$.command"),
    ],
)
def test_error_codes(messaging_worker, client, command, args, code, path) -> None:
    messaging_worker()
    error = error_of(client, command, **args)
    assert error["code"] == code, error
    if path:
        assert path in [d["path"] for d in error["details"]], error


def test_job_exists_and_job_busy(messaging_worker, client) -> None:
    messaging_worker()
    call(
        client,
        "job.create",
        handler="sleep",
        kwargs={"seconds": 1.5},
        job_id="s",
        when=LATER,
        periodically="1 day",
    )
    assert error_of(client, "job.create", handler="noop", job_id="s")["code"] == "job_exists"
    call(client, "job.run_now", job_id="s")
    assert error_of(client, "job.run_now", job_id="s")["code"] == "job_busy"


def test_the_same_command_twice_has_one_effect_and_one_reply(
    messaging_worker, client, watcher: EventWatcher
) -> None:
    worker = messaging_worker()
    command_id = str(uuid.uuid4())
    args = {"handler": "noop", "periodically": "1h", "when": LATER}
    first = client.request("job.create", args, command_id=command_id)
    second = client.request("job.create", args, command_id=command_id)
    assert first == second and first["ok"]
    # the same job_id-less command was applied once: one job, one job.created event
    assert worker.service.list_jobs()["jobs_count"] == 1
    job_id = first["result"]["job"]["job_id"]
    watcher.wait_for("job.created", job_id)
    watcher.drain(1.0)
    assert len(watcher.named("job.created")) == 1
    # an error is an answer too: repeated, it is the same answer
    missing = str(uuid.uuid4())
    assert client.request("job.get", {"job_id": "x"}, command_id=missing) == client.request(
        "job.get", {"job_id": "x"}, command_id=missing
    )


BAD_BODIES = {
    "invalid_json": (b'{"command": "job.get", ', "invalid_json"),
    "not_utf8": (b"\xff\xfe{}", "invalid_json"),
    "not_an_object": (b'["job.get"]', "validation_error"),
    "schema_violation": (
        json.dumps({"command": "job.get", "args": {"job_id": 5}, "argz": 1}).encode(),
        "validation_error",
    ),
    "unknown_command": (json.dumps({"command": "job.teleport"}).encode(), "unknown_command"),
    "oversized": (
        json.dumps({"command": "job.get", "args": {"job_id": "x" * (1024 * 1024)}}).encode(),
        "validation_error",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_bad_input_gets_reply_event_and_dead_letter(
    messaging_worker, client, watcher: EventWatcher, broker_url: str, names, case: str
) -> None:
    body, code = BAD_BODIES[case]
    if case == "oversized" and broker_url.startswith("sqs://"):
        body = json.dumps({"command": "job.get", "args": {"job_id": "x" * 200_000}}).encode()
        code = "validation_error"  # SQS itself refuses bodies over 256 KiB; over the schema's 191 chars
    messaging_worker()
    reply_queue = client.reply_queue()
    correlation = str(uuid.uuid4())
    publish_raw(
        broker_url,
        names.commands,
        body,
        reply_to=reply_queue,
        correlation_id=correlation,
        headers={"x-origin": "test"},
    )
    reply = valid("reply.json", client.wait_reply(correlation, timeout=30))
    assert reply["ok"] is False and reply["error"]["code"] == code, reply
    rejected = valid("events/command.rejected.json", watcher.wait_for("command.rejected")[0])
    assert rejected["error"]["code"] == code
    dead = read_queue(broker_url, names.dead, 1)
    assert len(dead) == 1
    assert body_of(dead[0]) == body
    assert dead[0].headers["x-f8a-reason"] == code
    assert dead[0].headers["x-origin"] == "test"
    assert (
        read_queue(broker_url, names.commands, 1, timeout=0.5) == []
    )  # acknowledged, not requeued


def test_worker_answers_a_client_that_has_only_the_contract(
    messaging_worker, broker_url: str, names
) -> None:
    """No f8a_jobs_worker code on the publishing side: raw kombu, raw JSON."""
    messaging_worker()
    with kombu_connection(broker_url) as conn:
        reply_queue = f"raw_reply_{uuid.uuid4().hex[:8]}"
        envelope = {
            "command": "job.list",
            "command_id": "raw-1",
            "args": {"job_type": "user"},
            "reply_to": reply_queue,
            "correlation_id": "corr-1",
        }
        # as any client must: the reply queue exists before the command goes out (else the reply is dropped)
        Queue(reply_queue, routing_key=reply_queue, durable=True)(conn.default_channel).declare()
        publish_raw(
            broker_url,
            names.commands,
            json.dumps(envelope).encode(),
            reply_to=reply_queue,
            correlation_id="corr-1",
        )
        replies = read_queue(broker_url, reply_queue, 1)
        assert len(replies) == 1, "no reply"
        reply = json.loads(body_of(replies[0]))
        assert reply == {
            "command_id": "raw-1",
            "command": "job.list",
            "ok": True,
            "result": {"jobs": [], "jobs_count": 0},
        }
        assert conn is not None


def test_filter_commands(messaging_worker, client, database_url: str) -> None:
    import sqlalchemy as sa

    from f8a_jobs_worker.filters.demo import create_demo_data

    engine = sa.create_engine(database_url)
    create_demo_data(engine)
    engine.dispose()
    messaging_worker()
    query = {
        "table": "packages",
        "select": "packages.name as name",
        "where": {"packages.name like": "%re%"},
    }
    shown = call(client, "filter.sql", **{"$filter": query})
    assert "%(" in shown["query"] and "%re%" in shown["params"].values()
    assert call(client, "filter.expand", **{"$filter": query}) == {
        "matched": [{"name": "requests"}],
        "truncated": False,
    }
    # sibling keys beside $filter are merged into each row, as in a flow argument
    assert call(client, "filter.expand", **{"$filter": query, "force": True, "limit": 5}) == {
        "matched": [{"name": "requests", "force": True}],
        "truncated": False,
    }
    report = call(client, "report.analyses", ecosystem="npm", from_date="2017-04-01")
    assert report["report"]["analyses"] == 2 and report["report"]["versions"] == 3
    assert error_of(client, "report.analyses", ecosystem="npm", to_date="soon")["code"] == (
        "validation_error"
    )
    error = error_of(client, "filter.expand", **{"$filter": {"table": "pg_catalog.pg_user"}})
    assert error["code"] == "filter_error"
    assert error["details"][0]["path"] == "$.args.$filter.table"
