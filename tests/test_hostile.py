"""A hostile publisher against a worker process, on RabbitMQ and on SQS (moto's server).

Each message of a corpus generated with hypothesis (tests/hostile.py), and on RabbitMQ each message whose
properties py-amqp cannot decode, gets exactly one outcome: one reply, and a dead letter byte for byte exactly
when the reply's code is one that is dead-lettered. None is ``internal_error``, the log has no traceback and
the worker answers ``scheduler.state`` throughout. ``F8A_FUZZ_SEED`` replays a run (each run prints its seed).
"""

from __future__ import annotations

import base64
import json
import os
import random
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import amqp
import boto3
import pytest

from f8a_jobs_worker.commands.answers import DEAD_LETTER_CODES
from tests.hostile import Hostile, corpus, frame_properties
from tests.messaging import ReplyCollector, body_of, durable_queue, kombu_connection, read_queue
from tests.process import WorkerProcess, worker_env

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("F8A_FUZZ_SEED") or random.randrange(2**31))
SCALE = float(os.environ.get("F8A_FUZZ_SCALE") or 1)  # more messages for a longer local run
COUNT = {"rabbitmq": int(240 * SCALE), "sqs": int(60 * SCALE)}
PROBE_EVERY = 20


def publish(
    url: str, queue: str, messages: list[Hostile], reply_to: str, user_id: str | None = None
) -> None:
    """Through kombu, each body as it is, with the message's own metadata (and ``user_id``, which the
    broker checks, where the worker's policy needs it)."""
    with kombu_connection(url) as conn:
        producer = conn.Producer()
        for message in messages:
            meta = message.meta
            producer.publish(
                message.body,
                exchange="",
                routing_key=queue,
                declare=[durable_queue(queue)],
                content_type=meta.get("content_type") or "application/json",
                content_encoding=meta.get("content_encoding") or "binary",
                headers=meta.get("headers") or {},
                reply_to=reply_to,
                correlation_id=message.correlation_id,
                **({"message_id": meta["message_id"]} if meta.get("message_id") else {}),
                **({"user_id": user_id} if user_id else {}),
            )


class RawPropertiesMessage(amqp.Message):  # type: ignore[misc]
    """A message whose content-header properties are the given bytes, as a careless client could send."""

    def __init__(self, body: bytes, raw: bytes) -> None:
        super().__init__(body)
        self.raw = raw

    def _serialize_properties(self) -> bytes:
        return self.raw


#: how the reply to each message of frame_properties() is found, and what it says
UNDECODABLE = {
    "header_bytes": "ok",  # (bytes are decodable)
    "property_timestamp_beyond_9999": "ok",  # (a timestamp is an integer)
}
#: the correlation id a reply carries for one that was not UTF-8: its bytes, escaped (docs/messages.md)
ESCAPED_CORRELATION = "frame-\\xff\\xfe"


def publish_undecodable(url: str, queue: str, reply_to: str) -> list[Hostile]:
    """On RabbitMQ: properties RabbitMQ passes on but py-amqp cannot decode; ``reply_to`` in the body, or
    (the ``property_*`` ones) in the properties only."""
    sent = []
    parts = urlsplit(url)
    conn = amqp.Connection(
        f"{parts.hostname}:{parts.port or 5672}", userid=parts.username, password=parts.password
    )
    conn.connect()
    try:
        channel = conn.channel()
        for name, raw in frame_properties(reply_to).items():
            if name == "property_correlation_id_not_utf8":
                correlation = ESCAPED_CORRELATION
                document = {"command": "scheduler.state", "command_id": "frame-raw-correlation"}
            elif name.startswith("property_"):
                correlation = f"frame-{name}"
                document = {"command": "scheduler.state", "command_id": correlation}
            else:
                correlation = f"frame-{name}"
                document = {
                    "command": "scheduler.state",
                    "reply_to": reply_to,
                    "correlation_id": correlation,
                }
            body = json.dumps(document).encode()
            channel.basic_publish(RawPropertiesMessage(body, raw), exchange="", routing_key=queue)
            expect = UNDECODABLE.get(name, "validation_error")
            sent.append(Hostile(body, correlation, {"name": name, "expect": expect}))
    finally:
        conn.close()
    return sent


def publish_raw_sqs(url: str, queue: str, reply_to: str) -> list[Hostile]:
    """On SQS: bodies sent with boto3 as they are (not kombu's envelope), some shaped like it but wrong."""
    parts = urlsplit(url)
    client = boto3.client(
        "sqs",
        endpoint_url=f"http://{parts.hostname}:{parts.port}",
        region_name="us-east-1",
        aws_access_key_id=parts.username,
        aws_secret_access_key=parts.password,
    )
    queue_url = client.get_queue_url(QueueName=queue)["QueueUrl"]

    def command(correlation: str, **extra: Any) -> dict[str, Any]:
        return {
            "command": "scheduler.state",
            "reply_to": reply_to,
            "correlation_id": correlation,
            **extra,
        }

    def kombu_like(document: dict[str, Any]) -> str:
        return base64.b64encode(json.dumps(document).encode()).decode()

    bodies = {
        "plain": json.dumps(command("sqs-plain")),
        "plain-bad-args": json.dumps(command("sqs-plain-bad-args", args={"x": 1})),
        "looks-like-base64": "AAAA",
        "envelope-properties-not-object": kombu_like({"body": "e30=", "properties": "x"}),
        "envelope-headers-not-object": kombu_like(
            {"body": "", "properties": {}, "headers": [1], "content-type": "application/json"}
        ),
        "envelope-body-not-base64": kombu_like(
            {"body": "%%%", "properties": {"body_encoding": "base64"}}
        ),
        "envelope-unknown-encoding": kombu_like(
            {"body": "e30=", "properties": {"body_encoding": "rot13"}}
        ),
    }
    expected = {
        "plain": "ok",
        "plain-bad-args": "validation_error",
        "looks-like-base64": "invalid_json",
    }
    sent = []
    for name, text in bodies.items():
        client.send_message(QueueUrl=queue_url, MessageBody=text)
        correlation = f"sqs-{name}" if name.startswith("plain") else ""
        expect = expected.get(name, "validation_error")
        sent.append(Hostile(text.encode(), correlation, {"name": name, "expect": expect}))
    return sent


@pytest.fixture(params=["rabbitmq", "sqs"])
def hostile_broker(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param, str(request.getfixturevalue(f"{request.param}_url"))


#: under a policy, the publisher may read and not write: the broker's user on RabbitMQ, moto's SenderId
READER_POLICY = "principals:\n  guest: reader\n  'AIDA*': reader\n"


def kept(code: str, reply: dict[str, Any]) -> bool:
    """Whether a reply's command is dead-lettered: the codes that never apply, and a sender that cannot be
    trusted (a policy's refusal names ``$.command`` in its details, and is only answered)."""
    if code == "forbidden":
        return not reply["error"]["details"]
    return code in DEAD_LETTER_CODES


@pytest.mark.parametrize("policy", [False, True], ids=["no-policy", "reader-policy"])
def test_every_hostile_message_gets_exactly_one_outcome(
    hostile_broker: tuple[str, str],
    policy: bool,
    database_url: str,
    names,
    empty_jobs_dir: Path,
    tmp_path: Path,
) -> None:
    transport, url = hostile_broker
    print(f"F8A_FUZZ_SEED={SEED}")
    settings = {"F8A_JOBS_THREADS": "2"}
    if policy:
        (tmp_path / "policy.yaml").write_text(READER_POLICY)
        settings["F8A_JOBS_POLICY"] = str(tmp_path / "policy.yaml")
    user = urlsplit(url).username if policy and transport == "rabbitmq" else None
    env = worker_env(database_url, url, names, empty_jobs_dir, **settings)
    messages = corpus(COUNT[transport], SEED)
    probes: list[Hostile] = []
    replies = ReplyCollector(url)
    worker = WorkerProcess.run(tmp_path, env)
    try:
        worker.wait_for("consuming commands")
        for start in range(0, len(messages), PROBE_EVERY):
            batch = messages[start : start + PROBE_EVERY]
            publish(url, names.commands, batch, replies.name, user)
            probe = Hostile(
                json.dumps({"command": "scheduler.state"}).encode(), f"probe-{start:04d}"
            )
            publish(url, names.commands, [probe], replies.name, user)
            probes.append(probe)
        if transport == "rabbitmq":
            extra = publish_undecodable(url, names.commands, replies.name)
        else:
            extra = publish_raw_sqs(url, names.commands, replies.name)
        answerable = [m for m in [*messages, *probes, *extra] if m.correlation_id]
        wanted = {m.correlation_id for m in answerable}
        replies.until(lambda _: wanted <= set(replies.by_correlation), timeout=240)
        dead = read_queue(
            url, names.dead, None, timeout=120, quiet=3.0 if transport == "rabbitmq" else 6.0
        )
        assert worker.terminate() == 0
    finally:
        worker.stop()
        replies.close()

    output = worker.output
    assert "Traceback" not in output, output[-5000:]
    assert "consumer failed" not in output
    for probe in probes:  # the worker answered throughout
        assert [r["ok"] for r in replies.by_correlation.get(probe.correlation_id, [])] == [True]

    dead_bodies = [body_of(d) for d in dead]
    assert len(dead_bodies) == len(set(dead_bodies)), "a message was dead-lettered twice"
    sent = {m.body: m for m in [*messages, *extra]}
    assert set(dead_bodies) <= set(sent), "a dead letter is not byte for byte a message sent"
    reasons = {body_of(d): d.headers["x-f8a-reason"] for d in dead}
    codes: dict[str, int] = {}
    for message in answerable:
        if message in probes:
            continue
        got = replies.by_correlation.get(message.correlation_id, [])
        assert len(got) == 1, f"{message.correlation_id} {message.body[:200]!r}: {got}"
        reply = got[0]
        code = "ok" if reply["ok"] else reply["error"]["code"]
        codes[code] = codes.get(code, 0) + 1
        assert code != "internal_error", f"{message.body[:300]!r}: {reply}"
        if kept(code, reply):
            assert reasons.get(message.body) == code, f"{message.body[:200]!r} not dead-lettered"
        else:
            assert message.body not in reasons, f"{message.body[:200]!r} dead-lettered on {code}"
    for message in extra:  # undecodable properties or envelopes: refused and kept, byte for byte
        # under a policy, a message whose user_id could not be read cannot be trusted on RabbitMQ
        expect = "forbidden" if policy and transport == "rabbitmq" else message.meta["expect"]
        if message.correlation_id:
            assert replies.by_correlation[message.correlation_id][0].get("ok") == (expect == "ok")
        if expect == "ok":
            assert message.body not in reasons, message.meta
        else:
            assert reasons.get(message.body) == expect, message.meta
    print(f"outcomes on {transport}: {codes}; dead letters: {len(dead)}")
    assert codes.get("validation_error") and codes.get("invalid_json")
    assert bool(codes.get("forbidden")) == policy


@pytest.mark.parametrize("broker_url", ["rabbitmq", "sqs"], indirect=True)
def test_a_message_that_crashes_the_consumer_is_met_once_more_then_dead_lettered(
    messaging_worker, client, broker_url: str, names, caplog: pytest.LogCaptureFixture
) -> None:
    """A fault the consumer does not expect (injected here into applying one command): the loop restarts
    once, the message comes back, is handled alone, fails again and is dead-lettered; the rest go on."""
    worker = messaging_worker()
    consumer = worker.consumer
    apply = consumer.apply

    def faulty(commands: list[Any]) -> None:
        if any(envelope.command_id == "poison" for _, envelope in commands):
            raise RuntimeError("injected fault")
        apply(commands)

    consumer.apply = faulty  # type: ignore[method-assign]
    replies = ReplyCollector(broker_url)
    try:
        client.send("scheduler.state", command_id="poison", reply_to=replies.name)
        assert client.call("scheduler.state")["state"] == "running"  # answered after the restart
        dead = read_queue(broker_url, names.dead, None, timeout=60, quiet=2.0)
    finally:
        replies.close()
    assert consumer.restarts == 1
    assert [d.headers["x-f8a-reason"] for d in dead] == ["internal_error"]
    assert json.loads(body_of(dead[0]))["command_id"] == "poison"
    assert "command consumer failed (restart 1)" in caplog.text
    assert "the message failed again; dead-lettering it" in caplog.text
