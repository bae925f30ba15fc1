"""The SQS adapter: plain JSON both ways, and any SQS message becomes a message the consumer can answer.

Out: replies, events and flow runs are sent by :class:`PlainSender` straight through boto3 (kombu's transport
wraps every body in its own base64 envelope): the body is the JSON document itself, and ``correlation_id``,
``message_id``, ``content_type`` and the ``routing_key`` (event or flow name) are SQS message attributes, so a
boto3 or Node client needs nothing but ``json.loads(body)``.

In: kombu reads an SQS body as its own JSON envelope (base64 on the wire) and wraps any other body, but it
raises from inside the consumer's poll on an envelope of the wrong shape, and it base64-decodes a plain body
that merely looks like base64. Here a body that is kombu's envelope is read as one, any other body is the
command itself, as it arrived, with its message attributes as properties (``reply_to``, ``correlation_id``),
and nothing raises: a payload that cannot be read becomes a message with ``problem``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

from kombu import Connection
from kombu.transport import SQS
from kombu.utils.url import parse_url

from f8a_jobs_worker.messaging.inbound import UNDECODABLE, VirtualMessage, queue_name_problem
from f8a_jobs_worker.messaging.topology import QueueTopology


class Channel(SQS.Channel):  # type: ignore[misc]
    Message = VirtualMessage

    def _message_to_python(self, message: dict[str, Any], queue_name: str, q_url: str) -> Any:
        raw = message.get("Body") or ""
        payload, problem = _kombu_envelope(raw)
        if payload is None:
            payload = {
                "body": raw,
                "properties": _attributes(message),
                "content-type": "application/json",
            }
            if problem:
                payload[UNDECODABLE] = problem
        properties = payload["properties"]
        info = properties.get("delivery_info")
        info = info if isinstance(info, dict) else {}
        info.update({"sqs_message": message, "sqs_queue": q_url})
        properties["delivery_info"] = info
        properties["delivery_tag"] = message["ReceiptHandle"]
        return payload


#: message attributes read as the message's properties (a plain JSON message from boto3 or Node)
PROPERTY_ATTRIBUTES = ("reply_to", "correlation_id", "message_id")


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
    second value says why a body that looks like kombu's envelope cannot be read as one (the consumer then
    refuses the body as it arrived)."""
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


#: one SendMessageBatch takes at most 10 messages and 256 KiB in all
_BATCH_COUNT = 10
_BATCH_BYTES = 256 * 1024
#: the message properties sent as attributes, beside the routing key
_SENT_ATTRIBUTES = ("correlation_id", "message_id", "content_type")


class PlainSender:
    """Sends JSON documents as they are, with their properties as SQS message attributes (boto3, through
    the client kombu's channel configured: the same endpoint, credentials and region)."""

    def __init__(self, conn: Connection) -> None:
        self.channel = conn.default_channel
        self.client = self.channel.sqs()
        self._urls: dict[str, str] = {}

    def send_many(self, messages: Sequence[tuple[str, str, bytes, dict[str, Any]]]) -> None:
        """``(queue, routing_key, body, properties)`` in order; raises if SQS refused any of them."""
        batch: list[dict[str, Any]] = []
        queue: str | None = None
        size = 0
        for target, routing_key, body, properties in messages:
            entry = self._entry(len(batch), routing_key, body, properties)
            if batch and (
                target != queue or len(batch) == _BATCH_COUNT or size + len(body) > _BATCH_BYTES
            ):
                self._send(str(queue), batch)
                batch, size = [], 0
                entry["Id"] = "0"
            queue = target
            batch.append(entry)
            size += len(body)
        if batch:
            self._send(str(queue), batch)

    def _entry(
        self, index: int, routing_key: str, body: bytes, properties: dict[str, Any]
    ) -> dict[str, Any]:
        values = {name: properties.get(name) for name in _SENT_ATTRIBUTES}
        values["content_type"] = values["content_type"] or "application/json"
        values["routing_key"] = routing_key or None
        return {
            "Id": str(index),
            "MessageBody": body.decode("utf-8"),
            "MessageAttributes": {
                name: {"DataType": "String", "StringValue": str(value)}
                for name, value in values.items()
                if value
            },
        }

    def _send(self, queue: str, entries: list[dict[str, Any]]) -> None:
        sent = self.client.send_message_batch(QueueUrl=self._url(queue), Entries=entries)
        failed = sent.get("Failed") or []
        if failed:
            raise RuntimeError(f"SQS refused {len(failed)} message(s): {failed[0].get('Message')}")

    def _url(self, queue: str) -> str:
        """The queue's URL; a queue that does not exist yet is created (as kombu would)."""
        url = self._urls.get(queue)
        if url is None:
            name = self.channel.canonical_queue_name(queue)
            try:
                url = self.client.get_queue_url(QueueName=name)["QueueUrl"]
            except self.client.exceptions.QueueDoesNotExist:
                url = self.client.create_queue(QueueName=name)["QueueUrl"]
            self._urls[queue] = str(url)
        return str(url)


class Transport(SQS.Transport):  # type: ignore[misc]
    Channel = Channel
    #: held at most this long while the job store is down: under the visibility timeout (60 s), so that a
    #: held message is never delivered to another consumer meanwhile
    max_hold = 30.0
    reply_to_problem = staticmethod(queue_name_problem)
    topology = QueueTopology()
    #: JSON documents go out as they are, not in kombu's envelope
    plain_sender = PlainSender


def connect(url: str, heartbeat: int = 0) -> Connection:
    """``sqs://key:secret@host:port``: kombu builds the endpoint from host and port, so an emulator on
    127.0.0.1 needs nothing more (and is spoken to over plain HTTP)."""
    params = parse_url(url)
    del params["transport"]
    options: dict[str, Any] = {
        "region": "us-east-1",
        "wait_time_seconds": 1,
        "visibility_timeout": 60,
        # plain JSON commands carry reply_to and correlation_id as message attributes
        "fetch_message_attributes": {"MessageAttributeNames": list(PROPERTY_ATTRIBUTES)},
    }
    if params.get("hostname") in {"127.0.0.1", "localhost", "::1"}:
        options["is_secure"] = False
    return Connection(transport=Transport, transport_options=options, **params)
