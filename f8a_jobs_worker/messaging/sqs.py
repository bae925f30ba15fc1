"""The Amazon SQS adapter, on boto3: queues only, plain JSON both ways, any body read without raising.

Out: replies, events and flow runs are the JSON document itself, with ``correlation_id``, ``message_id``,
``content_type`` and ``routing_key`` (the event or flow name) as message attributes, so a boto3 or Node client
needs nothing but ``json.loads(body)``; an event goes to the queue named like the events exchange. A message
with headers, or a body that is not text (a dead letter kept byte for byte), goes in kombu's envelope (base64
of JSON with ``body`` and ``properties``), which SQS takes whatever the bytes.

In: a body that is kombu's envelope is read as one (kombu and Celery clients send it); any other body is the
message itself, as it arrived, with its message attributes as properties (``reply_to``, ``correlation_id``).
A body shaped like the envelope but wrong is kept as it arrived, with the reason in ``problem``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import string
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import botocore.exceptions
from botocore.config import Config

from f8a_jobs_worker.errors import BrokerUnavailable
from f8a_jobs_worker.messaging.inbound import as_bytes, queue_name_problem
from f8a_jobs_worker.messaging.port import Delivery, Facts, Outgoing, Transport
from f8a_jobs_worker.retry import reason

#: message attributes read as the message's properties (a plain JSON message from boto3 or Node)
PROPERTY_ATTRIBUTES = ("reply_to", "correlation_id", "message_id")
#: one SendMessageBatch takes at most 10 messages and 256 KiB in all
BATCH_COUNT = 10
BATCH_BYTES = 256 * 1024
#: seconds a received message stays invisible to other consumers before it comes back unacknowledged
VISIBILITY_TIMEOUT = 60
#: SQS queue names take letters, digits, '-' and '_': '.' becomes '-' and other punctuation '_' (as kombu)
_NAME_TABLE = {ord(c): ord("_") for c in string.punctuation if c not in "-_."} | {
    ord("."): ord("-")
}
FAILURES = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)


class SQS(Transport):
    #: held at most 30 s while the job store is down: under the visibility timeout (60 s), so a held
    #: message is never delivered to another consumer meanwhile
    facts = Facts(batches=False, max_hold=30.0, receive_wait=1.0, identity="sqs")

    def __init__(self, url: str, heartbeat: int = 0) -> None:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        self.region = query.get("region", ["us-east-1"])[0]
        self.key = unquote(parts.username) if parts.username else None
        self.secret = unquote(parts.password) if parts.password else None
        self.endpoint: str | None = None
        if parts.hostname:
            local = parts.hostname in {"127.0.0.1", "localhost", "::1"}
            port = f":{parts.port}" if parts.port else ""
            self.endpoint = f"{'http' if local else 'https'}://{parts.hostname}{port}"
        self._client: Any = None
        self._urls: dict[str, str] = {}
        self._created: set[str] = set()
        self._consuming: str | None = None
        self._prefetch = 1
        #: received and neither acknowledged nor given back: given back when the connection closes
        self._taken: dict[str, Delivery] = {}

    @contextmanager
    def _failures(self, sent: int = 0) -> Iterator[None]:
        try:
            yield
        except FAILURES as exc:
            raise BrokerUnavailable(f"SQS: {reason(exc)}", sent) from exc

    def connect(self) -> None:
        self._client = boto3.client(
            "sqs",
            region_name=self.region,
            endpoint_url=self.endpoint,
            aws_access_key_id=self.key,
            aws_secret_access_key=self.secret,
            config=Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=30),
        )
        with self._failures():
            self._client.list_queues(MaxResults=1)  # a round trip: the endpoint answers

    def close(self) -> None:
        """Messages taken and not acknowledged go back now (else after their visibility timeout)."""
        taken = list(self._taken.values())
        if taken and self._client is not None:
            with contextlib.suppress(BrokerUnavailable):
                self.requeue(taken)
        self._taken.clear()
        self._client = None
        self._urls.clear()

    def _sqs(self) -> Any:
        if self._client is None:
            raise BrokerUnavailable("SQS: not connected")
        return self._client

    def _url(self, queue: str) -> str:
        """The queue's URL; a queue that does not exist yet is created (as kombu does)."""
        url = self._urls.get(queue)
        if url is None:
            sqs, name = self._sqs(), queue.translate(_NAME_TABLE)
            with self._failures():
                try:
                    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
                except sqs.exceptions.QueueDoesNotExist:
                    attributes = {"VisibilityTimeout": str(VISIBILITY_TIMEOUT)}
                    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
            self._urls[queue] = url = str(url)
        return url

    # -- queues ------------------------------------------------------------------------------------------

    def declare_queue(self, name: str) -> None:
        self._url(name)

    def subscribe(self, topic: str, queue: str, binding: str = "#") -> str:
        """No routing: the standing consumer reads the queue named like the topic."""
        self._url(topic)
        return topic

    def private_queue(self, name: str, topic: str = "", binding: str = "#") -> str:
        """A queue of its own (deleted by :meth:`release`); for a topic, the topic's one queue (readers
        take messages off it)."""
        if topic:
            self._url(topic)
            return topic
        self._url(name)
        self._created.add(name)
        return name

    def release(self, queue: str) -> None:
        if queue in self._created:
            self._created.discard(queue)
            with self._failures():
                self._sqs().delete_queue(QueueUrl=self._url(queue))
            self._urls.pop(queue, None)

    def reply_to_problem(self, name: str) -> str | None:
        return queue_name_problem(name)

    # -- receiving -------------------------------------------------------------------------------------------

    def consume(self, queue: str, prefetch: int) -> None:
        self._url(queue)
        self._consuming, self._prefetch = queue, prefetch

    def receive(self, timeout: float, limit: int) -> list[Delivery]:
        if self._consuming is None:
            raise BrokerUnavailable("SQS: nothing consumed")
        return self._receive(self._consuming, timeout, min(limit, self._prefetch))

    def get(self, queue: str, wait: float = 0.0) -> Delivery | None:
        found = self._receive(queue, wait, 1)
        return found[0] if found else None

    def _receive(self, queue: str, timeout: float, limit: int) -> list[Delivery]:
        url = self._url(queue)
        with self._failures():
            found = self._sqs().receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=max(1, min(limit, BATCH_COUNT)),
                WaitTimeSeconds=max(0, min(int(timeout), 20)),
                MessageAttributeNames=["All"],
                AttributeNames=["SenderId", "ApproximateReceiveCount"],
            )
        deliveries = [_delivery(message, url) for message in found.get("Messages", [])]
        self._taken.update((d.tag[1], d) for d in deliveries)
        return deliveries

    def ack(self, deliveries: Iterable[Delivery]) -> None:
        deliveries = list(deliveries)
        for delivery in deliveries:
            self._taken.pop(delivery.tag[1], None)
        for url, entries in _by_queue(deliveries):
            with self._failures():
                self._sqs().delete_message_batch(QueueUrl=url, Entries=entries)

    def requeue(self, deliveries: Iterable[Delivery]) -> None:
        deliveries = list(deliveries)
        for delivery in deliveries:
            self._taken.pop(delivery.tag[1], None)
        for url, entries in _by_queue(deliveries):
            for entry in entries:
                entry["VisibilityTimeout"] = 0
            with self._failures():
                self._sqs().change_message_visibility_batch(QueueUrl=url, Entries=entries)

    # -- sending ---------------------------------------------------------------------------------------------

    def send(self, messages: Iterable[Outgoing], window: int = 0) -> int:
        """In batches of ten (or 256 KiB) per queue; each batch returns once SQS has it."""
        sent = 0
        batch: list[dict[str, Any]] = []
        target: str | None = None
        size = 0
        for message in messages:
            queue = message.topic or message.queue
            entry = _entry(len(batch), message)
            length = len(entry["MessageBody"])
            if batch and (
                queue != target or len(batch) == BATCH_COUNT or size + length > BATCH_BYTES
            ):
                sent += self._send_batch(str(target), batch, sent)
                batch, size = [], 0
                entry["Id"] = "0"
            target = queue
            batch.append(entry)
            size += length
        if batch:
            sent += self._send_batch(str(target), batch, sent)
        return sent

    def _send_batch(self, queue: str, entries: list[dict[str, Any]], sent: int) -> int:
        with self._failures(sent):
            answer = self._sqs().send_message_batch(QueueUrl=self._url(queue), Entries=entries)
        failed = answer.get("Failed") or []
        if failed:
            raise BrokerUnavailable(
                f"SQS refused {len(failed)} message(s): {failed[0].get('Message')}", sent
            )
        return len(entries)


def _by_queue(deliveries: Iterable[Delivery]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """The receipt handles of ``deliveries`` by queue, ten at a time (what a batch call takes)."""
    queues: dict[str, list[str]] = {}
    for delivery in deliveries:
        url, handle = delivery.tag
        queues.setdefault(url, []).append(handle)
    for url, handles in queues.items():
        for start in range(0, len(handles), BATCH_COUNT):
            chunk = handles[start : start + BATCH_COUNT]
            yield url, [{"Id": str(n), "ReceiptHandle": h} for n, h in enumerate(chunk)]


def _entry(index: int, message: Outgoing) -> dict[str, Any]:
    """A SendMessageBatch entry: the JSON itself with attributes, or kombu's envelope when the message has
    headers or a body that is not text."""
    try:
        text = None if message.headers else message.body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None:
        return {"Id": str(index), "MessageBody": envelope(message)}
    values = {
        "correlation_id": message.correlation_id,
        "message_id": message.message_id,
        "reply_to": message.reply_to,
        "content_type": message.content_type,
        "routing_key": message.routing_key or None,
    }
    return {
        "Id": str(index),
        "MessageBody": text,
        "MessageAttributes": {
            name: {"DataType": "String", "StringValue": str(value)}
            for name, value in values.items()
            if value
        },
    }


def envelope(message: Outgoing) -> str:
    """kombu's envelope of a message: base64 of JSON, the body in base64."""
    properties: dict[str, Any] = {
        "body_encoding": "base64",
        "delivery_info": {"exchange": message.topic, "routing_key": message.routing_key},
        "delivery_mode": 2,
        "delivery_tag": str(uuid.uuid4()),
    }
    for name in PROPERTY_ATTRIBUTES:
        value = getattr(message, name)
        if isinstance(value, str) and value:
            properties[name] = value
    document = {
        "body": base64.b64encode(message.body).decode("ascii"),
        "content-encoding": message.content_encoding,
        "content-type": message.content_type,
        "headers": message.headers,
        "properties": properties,
    }
    return base64.b64encode(json.dumps(document).encode("utf-8")).decode("ascii")


def _delivery(message: dict[str, Any], url: str) -> Delivery:
    """Any SQS message as a delivery: kombu's envelope read as one, any other body as the message."""
    raw = message.get("Body") or ""
    tag = (url, message["ReceiptHandle"])
    document, problem = _kombu_envelope(raw)
    delivery = _from(message, raw, document, problem, tag)
    system = message.get("Attributes") or {}
    sender = system.get("SenderId")
    delivery.sender = sender if isinstance(sender, str) and sender else None
    delivery.redelivered = str(system.get("ApproximateReceiveCount", "1")) not in ("", "0", "1")
    return delivery


def _from(
    message: dict[str, Any],
    raw: str,
    document: dict[str, Any] | None,
    problem: str | None,
    tag: Any,
) -> Delivery:
    """The message as kombu's envelope has it, or as it arrived (a plain message)."""
    if document is None:
        return Delivery(
            as_bytes(raw), _attributes(message), _signature(message), problem=problem, tag=tag
        )
    properties = document["properties"]
    body = document["body"]
    data = base64.b64decode(body) if properties.get("body_encoding") == "base64" else as_bytes(body)
    kept = {k: v for k, v in properties.items() if k in PROPERTY_ATTRIBUTES}
    for key in ("content-type", "content-encoding"):
        if isinstance(document.get(key), str):
            kept[key.replace("-", "_")] = document[key]
    return Delivery(data, kept, dict(document.get("headers") or {}), tag=tag)


def _signature(message: dict[str, Any]) -> dict[str, Any]:
    """The ``x-f8a-*`` message attributes (a signature) of a plain message, as its headers."""
    attributes = message.get("MessageAttributes")
    if not isinstance(attributes, dict):
        return {}
    return {
        name: value["StringValue"]
        for name, value in attributes.items()
        if name.startswith("x-f8a-")
        and isinstance(value, dict)
        and isinstance(value.get("StringValue"), str)
    }


def _attributes(message: dict[str, Any]) -> dict[str, Any]:
    attributes = message.get("MessageAttributes")
    if not isinstance(attributes, dict):
        return {}
    found = {}
    for name in PROPERTY_ATTRIBUTES:
        value = attributes.get(name)
        if isinstance(value, dict) and isinstance(value.get("StringValue"), str):
            found[name] = value["StringValue"]
    return found


def _kombu_envelope(raw: str) -> tuple[dict[str, Any] | None, str | None]:
    """kombu's envelope (base64 of JSON with ``body`` and ``properties``), or None for any other body; the
    second value says why a body that looks like kombu's envelope cannot be read as one (the message is
    then refused as it arrived)."""
    try:
        document = json.loads(base64.b64decode(raw, validate=True))
    except (binascii.Error, ValueError, RecursionError):
        return None, None
    if not isinstance(document, dict) or not {"body", "properties"} <= set(document):
        return None, None
    properties, headers, body = document["properties"], document.get("headers"), document["body"]
    if not isinstance(properties, dict) or not isinstance(headers, dict | None):
        return None, "a kombu envelope whose properties or headers are not objects"
    encoding = properties.get("body_encoding")
    if not isinstance(body, str) or encoding not in {None, "base64"}:
        return None, "a kombu envelope whose body cannot be read"
    if encoding == "base64":
        try:
            base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return None, "a kombu envelope whose body is not base64"
    return document, None
