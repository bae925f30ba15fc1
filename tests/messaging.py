"""Test-side broker tools: an event watcher, a reply collector and a raw publisher on kombu (Celery's messaging
library, which the worker's own adapters do not use), so that the tests publish and watch as any other client
of the contract would; and a queue reader that keeps any message as it arrived."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
from kombu import Connection, Consumer, Exchange, Queue

from f8a_jobs_worker.messaging.connect import transport_for
from f8a_jobs_worker.messaging.port import Delivery


def kombu_connection(url: str, heartbeat: int = 0) -> Connection:
    """kombu's connection to the broker of a worker URL (``sqs://`` to a local emulator is plain HTTP;
    ``filesystem:///path`` is the embedded broker's folder, which kombu's filesystem transport shares)."""
    parts = urlsplit(url)
    if parts.scheme == "filesystem":
        folder = str(Path(unquote(parts.path)))
        Path(folder).mkdir(parents=True, exist_ok=True)
        options = {"data_folder_in": folder, "data_folder_out": folder, "polling_interval": 0.05}
        return Connection("filesystem://", transport_options=options)
    if parts.scheme == "sqs":
        options: dict[str, Any] = {"region": "us-east-1", "wait_time_seconds": 1}
        if parts.hostname in {"127.0.0.1", "localhost", "::1"}:
            options["is_secure"] = False
        return Connection(url, transport_options=options)
    return Connection(url, heartbeat=heartbeat)


def fanout(url: str) -> bool:
    """Whether the broker routes a copy of each event to every watcher (RabbitMQ) or keeps one queue."""
    return urlsplit(url).scheme in {"amqp", "amqps"}


def durable_queue(name: str) -> Queue:
    return Queue(name, routing_key=name, durable=True, auto_delete=False)


def private_queue(url: str, name: str, topic: str = "", binding: str = "#") -> Queue:
    """A queue of one reader's own: exclusive on RabbitMQ (bound to ``topic``); elsewhere a durable queue
    (the topic's one queue, for a topic)."""
    if not fanout(url):
        return durable_queue(topic or name)
    exchange = Exchange(topic, type="topic", durable=True) if topic else None
    return Queue(
        name, exchange, routing_key=binding if topic else name, exclusive=True, auto_delete=True
    )


def body_of(message: Any) -> bytes:
    return message.body if isinstance(message.body, bytes) else str(message.body).encode()


class EventWatcher:
    """A monitor that knows only the contract: binds to the events exchange (or reads the events queue)."""

    def __init__(self, url: str, events: str, binding: str = "#") -> None:
        self.conn: Connection = kombu_connection(url)
        self.events: list[dict[str, Any]] = []
        channel = self.conn.default_channel
        name = f"{events}_watch_{uuid.uuid4().hex[:8]}"
        self.queue = private_queue(url, name, events, binding)(channel)
        self.queue.declare()
        self.consumer = Consumer(
            channel, queues=[self.queue], on_message=self._on_message, accept=None
        )
        self.consumer.consume()

    def _on_message(self, message: Any) -> None:
        message.ack()
        self.events.append(json.loads(body_of(message)))

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                self.conn.drain_events(timeout=min(remaining, 0.5))

    def named(self, name: str, job_id: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events
            if e["event"] == name and (job_id is None or e.get("job_id") == job_id)
        ]

    def wait_for(
        self, name: str, job_id: str | None = None, timeout: float = 20.0, count: int = 1
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.named(name, job_id)) < count and time.monotonic() < deadline:
            self.drain(0.2)
        found = self.named(name, job_id)
        assert len(found) >= count, (
            f"{name} for {job_id}: {len(found)} of {count}; saw {self.events}"
        )
        return found

    def close(self) -> None:
        self.conn.release()


def read_queue(
    url: str, name: str, count: int | None, timeout: float = 20.0, quiet: float | None = None
) -> list[Delivery]:
    """Take messages off a queue (acknowledging them): ``count`` of them, or with ``quiet`` every one
    until none came for that many seconds; at most ``timeout`` seconds either way. Read through the
    worker's own adapter, which keeps any message as it arrived (kombu would decompress a body that says it
    is compressed, and fail on one that says so wrongly, as a hostile publisher's dead letters do)."""
    transport = transport_for(url)
    transport.connect()
    try:
        transport.declare_queue(name)
        taken: list[Delivery] = []
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        while (count is None or len(taken) < count) and time.monotonic() < deadline:
            if quiet is not None and time.monotonic() - last >= quiet:
                break
            message = transport.get(name, wait=0.5)
            if message is None:
                time.sleep(0.1)
                continue
            transport.ack([message])
            taken.append(message)
            last = time.monotonic()
        return taken
    finally:
        transport.close()


def publish_raw(url: str, queue: str, body: bytes, **properties: Any) -> None:
    """Publish bytes as they are, the way a careless or hostile publisher would."""
    with kombu_connection(url) as conn:
        producer = conn.Producer()
        producer.publish(
            body,
            exchange="",
            routing_key=queue,
            declare=[durable_queue(queue)],
            content_type=properties.pop("content_type", "application/json"),
            content_encoding=properties.pop("content_encoding", "binary"),
            **properties,
        )


def until_taken(url: str, queue: str, timeout: float = 30.0) -> None:
    """Wait until RabbitMQ has delivered every message of ``queue`` (none is left ready)."""
    deadline = time.monotonic() + timeout
    with kombu_connection(url) as conn:
        channel = conn.default_channel
        while channel.queue_declare(queue, passive=True).message_count:
            assert time.monotonic() < deadline, f"{queue}: messages still ready after {timeout} s"
            time.sleep(0.01)


class ReplyCollector:
    """Every reply that arrives on a queue of its own, duplicates included: through kombu, or on SQS through
    boto3 as docs/clients.md reads it (kombu does not read SQS message attributes, where a plain reply's
    correlation id is)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.name = f"replies_{uuid.uuid4().hex[:10]}"
        self.replies: list[dict[str, Any]] = []
        #: the same replies by the correlation id they carry
        self.by_correlation: dict[str, list[dict[str, Any]]] = {}
        if urlsplit(url).scheme == "sqs":
            self.sqs = sqs_client(url)
            self.queue_url = self.sqs.create_queue(QueueName=self.name)["QueueUrl"]
            return
        self.conn: Connection = kombu_connection(url)
        channel = self.conn.default_channel
        self.queue = private_queue(url, self.name)(channel)
        self.queue.declare()
        self.consumer = Consumer(
            channel, queues=[self.queue], on_message=self._on_message, accept=None
        )
        self.consumer.consume()

    def _on_message(self, message: Any) -> None:
        message.ack()
        self._add(body_of(message), (message.properties or {}).get("correlation_id"))

    def _add(self, body: bytes, correlation: str | None) -> None:
        reply = json.loads(body)
        self.replies.append(reply)
        key = str(correlation or reply["command_id"])
        self.by_correlation.setdefault(key, []).append(reply)

    def _read(self, timeout: float) -> None:
        if hasattr(self, "sqs"):
            found = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=max(int(timeout), 0),
                MessageAttributeNames=["All"],
            )
            for message in found.get("Messages", []):
                self.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
                attributes = message.get("MessageAttributes") or {}
                correlation = (attributes.get("correlation_id") or {}).get("StringValue")
                self._add(message["Body"].encode("utf-8", "surrogatepass"), correlation)
            return
        with contextlib.suppress(TimeoutError):
            self.conn.drain_events(timeout=timeout)

    def until(self, done: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done(self.replies) and time.monotonic() < deadline:
            self._read(0.5 if not hasattr(self, "sqs") else 1.0)

    def close(self) -> None:
        """Release the connection, and the queue where nothing else deletes it."""
        if hasattr(self, "sqs"):
            with contextlib.suppress(Exception):
                self.sqs.delete_queue(QueueUrl=self.queue_url)
            return
        if not fanout(self.url):
            with contextlib.suppress(Exception):
                self.queue.delete()
        self.conn.release()


def sqs_client(url: str) -> Any:
    """boto3's SQS client for a worker's ``sqs://key:secret@host:port``."""
    parts = urlsplit(url)
    return boto3.client(
        "sqs",
        endpoint_url=f"http://{parts.hostname}:{parts.port}",
        region_name="us-east-1",
        aws_access_key_id=parts.username,
        aws_secret_access_key=parts.password,
    )
