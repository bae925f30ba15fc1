"""The command consumer on SQLite and the in-memory transport: replies, idempotency, a batch, and what
bytes that are no command get (a reply, an event, a byte-for-byte dead letter, no effect)."""

from __future__ import annotations

import json
import logging
import uuid

from f8a_jobs_worker.client import Client
from f8a_jobs_worker.messaging.memory import MemoryTransport
from f8a_jobs_worker.messaging.names import Names
from f8a_jobs_worker.messaging.port import Outgoing
from tests.helpers import sink_of


def test_a_command_sent_twice_is_applied_once_and_answered_alike(
    unit_worker, client: Client
) -> None:
    worker = unit_worker()
    args = {"handler": "noop", "job_id": "once", "state": "paused"}
    first = client.request("job.create", args, command_id="create-once")
    again = client.request("job.create", args, command_id="create-once")
    assert first["ok"] is True and again == first
    sink_of(worker).wait_for(
        "job.created", "once"
    )  # events go out after the reply, through the outbox
    assert client.request("job.create", args)["error"]["code"] == "job_exists"
    assert sink_of(worker).names("once").count("job.created") == 1


def test_a_batch_of_commands_is_answered_each_in_order(unit_worker, client: Client) -> None:
    unit_worker(prefetch=20)
    reply_to = client.reply_queue()
    ids = [
        client.send(
            "job.create",
            {"handler": "noop", "job_id": f"batch-{n}", "state": "paused"},
            reply_to=reply_to,
        )
        for n in range(20)
    ]
    replies = [client.wait_reply(command_id) for command_id in ids]
    assert [r["result"]["job"]["job_id"] for r in replies] == [f"batch-{n}" for n in range(20)]
    listed = client.call("job.list", job_type="user")["jobs"]
    assert sorted(job["job_id"] for job in listed) == sorted(f"batch-{n}" for n in range(20))


def test_bytes_that_are_no_command_get_a_reply_an_event_and_a_dead_letter(
    unit_worker, client: Client, broker_url: str
) -> None:
    worker = unit_worker()
    names = Names()
    body = b'\xff{"command": "job.delete", "args": {"job_id": "x"}}'
    correlation = str(uuid.uuid4())
    publisher = MemoryTransport(broker_url)
    publisher.connect()
    publisher.send(
        [
            Outgoing(
                body,
                queue=names.commands,
                correlation_id=correlation,
                reply_to=client.reply_queue(),
            )
        ]
    )
    reply = client.wait_reply(correlation)
    assert reply["ok"] is False and reply["error"]["code"] == "invalid_json"
    (rejected,) = sink_of(worker).wait_for("command.rejected")
    assert rejected.fields["error"]["code"] == "invalid_json"
    dead = publisher.get(names.dead)
    assert dead is not None and dead.body == body  # byte for byte
    assert dead.headers["x-f8a-reason"] == "invalid_json"
    assert publisher.get(names.dead) is None
    assert client.call("job.list")["jobs"] == []  # refused: no effect
    json.dumps(reply)  # the reply is plain JSON


def test_answered_reads_log_at_debug_and_everything_else_at_info(
    unit_worker, client: Client, caplog
) -> None:
    """A dashboard polls job.list every few seconds: an answered read changed nothing and says so only at
    DEBUG; a write, and a read that was refused, say what happened at INFO."""
    unit_worker()
    caplog.set_level(logging.DEBUG, logger="f8a_jobs_worker.commands.consumer")
    created = client.request("job.create", {"handler": "noop", "job_id": "j", "state": "paused"})
    read = client.request("job.get", {"job_id": "j"})
    missing = client.request("job.get", {"job_id": "nope"})
    assert created["ok"] and read["ok"] and missing["error"]["code"] == "job_not_found"
    levels = {
        record.command_id: record.levelname  # type: ignore[attr-defined]
        for record in caplog.records
        if hasattr(record, "command_id")
    }
    assert levels[created["command_id"]] == "INFO"
    assert levels[read["command_id"]] == "DEBUG"
    assert levels[missing["command_id"]] == "INFO"
