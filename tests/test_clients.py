"""The client examples of docs/clients.md, run exactly as written, against a worker on real brokers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
import sqlalchemy as sa

from f8a_jobs_worker.commands.applier import COMMANDS
from f8a_jobs_worker.filters.demo import create_demo_data
from f8a_jobs_worker.validation import file_validator

ROOT = Path(__file__).resolve().parent.parent


def example(name: str) -> str:
    """The code block after ``<!-- example: name -->`` in docs/clients.md."""
    text = (ROOT / "docs" / "clients.md").read_text(encoding="utf-8")
    found = re.search(rf"<!-- example: {name} -->\n```\w+\n(.*?)```", text, re.DOTALL)
    assert found, f"no example {name!r} in docs/clients.md"
    return found.group(1)


@pytest.mark.parametrize("broker_url", ["sqs"], indirect=True)
def test_the_boto3_example_needs_nothing_but_json(
    messaging_worker: Any, broker_url: str, names: Any, tmp_path: Path
) -> None:
    """boto3 only: commands as plain JSON with message attributes, replies and events read with
    ``json.loads(body)``; under a policy that knows the sender by SQS's SenderId (moto's is AIDA...)."""
    policy = tmp_path / "policy.yaml"
    policy.write_text("principals:\n  'AIDA*': operator\n")
    messaging_worker(policy=str(policy))
    prefix = names.commands.removesuffix("_commands")
    assert names.events == f"{prefix}_events"
    endpoint = urlsplit(broker_url)
    script = tmp_path / "client.py"
    script.write_text(example("boto3"), encoding="utf-8")
    env = {
        **os.environ,
        "SQS_ENDPOINT": f"http://{endpoint.hostname}:{endpoint.port}",
        "AWS_ACCESS_KEY_ID": endpoint.username or "testing",
        "AWS_SECRET_ACCESS_KEY": endpoint.password or "testing",
        "F8A_QUEUE_PREFIX": prefix,
    }
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "events: ['job.created', 'job.deleted']" in done.stdout


NODE_EXAMPLES = ROOT / "docs" / "examples" / "node"


def run_on_rabbitmq(
    program: str, script: Path, broker_url: str, names: Any, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run an example with the broker and the test's queue names (and ``extra``) in its environment."""
    return subprocess.run(
        [program, str(script)],
        env={
            **os.environ,
            "AMQP_URL": broker_url.rstrip("/"),
            "F8A_QUEUE_PREFIX": names.commands.removesuffix("_commands"),
            **(extra or {}),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("broker_url", ["rabbitmq"], indirect=True)
def test_the_node_example_over_rabbitmq(
    messaging_worker: Any, broker_url: str, names: Any, tmp_path: Path
) -> None:
    """amqplib only: replyTo/correlationId/userId properties, events from a queue bound to the events
    exchange, under a policy that knows the broker user. Needs Node.js and ``npm ci`` in docs/examples/node
    (``make test`` runs it)."""
    assert (NODE_EXAMPLES / "node_modules" / "amqplib").is_dir(), "run npm ci in docs/examples/node"
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"principals:\n  {urlsplit(broker_url).username}: operator\n")
    messaging_worker(policy=str(policy))
    script = NODE_EXAMPLES / f"example-{tmp_path.name}.js"
    script.write_text(example("node"), encoding="utf-8")
    try:
        done = run_on_rabbitmq("node", script, broker_url, names)
    finally:
        script.unlink()
    assert done.returncode == 0, done.stdout + done.stderr
    assert 'events: ["job.created","job.deleted"]' in done.stdout


@pytest.mark.parametrize("broker_url", ["rabbitmq"], indirect=True)
@pytest.mark.parametrize("signed", [False, True], ids=["no-policy", "signed-under-policy"])
def test_the_shell_example_with_amqp_tools(
    messaging_worker: Any, broker_url: str, names: Any, tmp_path: Path, signed: bool
) -> None:
    """As written; and signing through headers (amqp-publish cannot set user_id) under a policy that
    requires signatures."""
    extra: dict[str, str] = {}
    if signed:
        keys, policy = tmp_path / "keys.yaml", tmp_path / "policy.yaml"
        keys.write_text("keys:\n  scripts-1: {secret: s3cret-0123456789abcdef, principal: cron}\n")
        policy.write_text("principals:\n  cron: operator\n")
        messaging_worker(policy=str(policy), signing="required", signing_keys=str(keys))
        extra["F8A_JOBS_SIGNING_KEY"] = "scripts-1:s3cret-0123456789abcdef"
    else:
        messaging_worker()
    script = tmp_path / "client.sh"
    script.write_text(example("shell"), encoding="utf-8")
    done = run_on_rabbitmq("sh", script, broker_url, names, extra)
    assert done.returncode == 0, done.stdout + done.stderr
    replies = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert [r["command"] for r in replies] == ["job.create", "job.get", "job.delete"]
    assert all(r["ok"] for r in replies), replies
    assert replies[2]["result"] == {"removed": ["hello-shell"]}
    if signed:
        assert replies[0]["result"]["job"]["created_by"] == {
            "principal": "cron",
            "source": "signature",
        }


@pytest.mark.parametrize("broker_url", ["sqs"], indirect=True)
def test_boto3_drives_every_command_and_reads_plain_json(
    messaging_worker: Any, broker_url: str, names: Any, database_url: str
) -> None:
    """Every command of the contract sent by boto3 alone (plain JSON body, reply_to and correlation_id as
    message attributes); each reply is ``json.loads(body)``, valid against reply.json and its result schema,
    and carries the command's correlation id as a message attribute; the events queue holds plain JSON."""
    engine = sa.create_engine(database_url)
    create_demo_data(engine)  # the analytics tables filter.* commands query
    engine.dispose()
    messaging_worker()
    endpoint = urlsplit(broker_url)
    sqs = boto3.client(
        "sqs",
        endpoint_url=f"http://{endpoint.hostname}:{endpoint.port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    commands = sqs.create_queue(QueueName=names.commands)["QueueUrl"]
    replies = sqs.create_queue(QueueName=f"{names.commands}_boto3")["QueueUrl"]
    when = "2999-01-01T00:00:00+00:00"
    calls = [
        ("job.create", {"handler": "noop", "job_id": "b", "when": when}),
        ("job.get", {"job_id": "b", "next_runs": 2}),
        ("schedule.preview", {"cron": "0 2 * * *", "timezone": "Europe/Prague", "count": 3}),
        ("job.list", {"job_type": "all"}),
        ("job.pause", {"job_id": "b"}),
        ("job.resume", {"job_id": "b"}),
        ("job.run_now", {"job_id": "b"}),
        ("job.history", {"job_id": "b"}),
        ("job.backfill", {"job_id": "b", "start": "2020-01-01", "end": "2020-01-02"}),
        ("jobs.clean_failed", {}),
        ("filter.sql", {"$filter": {"table": "packages"}}),
        ("filter.expand", {"$filter": {"table": "packages"}, "limit": 1}),
        ("report.analyses", {"ecosystem": "npm", "from_date": "2017-01-01"}),
        ("scheduler.state", {}),
        ("scheduler.pause", {}),
        ("scheduler.resume", {}),
        ("job.delete", {"job_id": "b"}),
        ("audit.list", {"job_id": "b", "limit": 3}),
        ("runs.summary", {"window_s": 600}),
    ]
    assert {command for command, _ in calls} == set(COMMANDS)
    for n, (command, args) in enumerate(calls):
        correlation_id = f"boto3-{n}"
        sqs.send_message(
            QueueUrl=commands,
            MessageBody=json.dumps({"command": command, "args": args}),
            MessageAttributes={
                "reply_to": {"DataType": "String", "StringValue": f"{names.commands}_boto3"},
                "correlation_id": {"DataType": "String", "StringValue": correlation_id},
            },
        )
        message = _receive_one(sqs, replies)
        reply = json.loads(message["Body"])
        assert message["MessageAttributes"]["correlation_id"]["StringValue"] == correlation_id
        assert message["MessageAttributes"]["content_type"]["StringValue"] == "application/json"
        assert reply["command"] == command and reply["ok"], reply
        assert not list(file_validator("reply.json").iter_errors(reply))
        assert not list(file_validator(f"results/{command}.json").iter_errors(reply["result"]))
    events = sqs.create_queue(QueueName=names.events)["QueueUrl"]
    message = _receive_one(sqs, events)
    event = json.loads(message["Body"])
    assert event["event"] == message["MessageAttributes"]["routing_key"]["StringValue"]
    assert not list(file_validator(f"events/{event['event']}.json").iter_errors(event))


def _receive_one(sqs: Any, queue_url: str) -> dict[str, Any]:
    for _ in range(30):
        received = sqs.receive_message(
            QueueUrl=queue_url, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if received:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=received[0]["ReceiptHandle"])
            return dict(received[0])
    raise AssertionError(f"nothing on {queue_url}")
