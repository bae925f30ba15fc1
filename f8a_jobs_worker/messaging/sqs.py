"""The SQS adapter's kombu transport: any SQS message becomes a message the consumer can answer.

kombu reads an SQS body as its own JSON envelope (base64 on the wire) and wraps any other body, but it raises
from inside the consumer's poll on an envelope of the wrong shape, and it base64-decodes a plain body that
merely looks like base64. Here a body that is kombu's envelope is read as one, any other body is the command
itself, as it arrived, and nothing raises: a payload that cannot be read becomes a message with ``problem``.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from kombu import Connection
from kombu.transport import SQS
from kombu.utils.url import parse_url

from f8a_jobs_worker.messaging.inbound import UNDECODABLE, VirtualMessage, queue_name_problem


class Channel(SQS.Channel):  # type: ignore[misc]
    Message = VirtualMessage

    def _message_to_python(self, message: dict[str, Any], queue_name: str, q_url: str) -> Any:
        raw = message.get("Body") or ""
        payload, problem = _kombu_envelope(raw)
        if payload is None:
            payload = {"body": raw, "properties": {}, "content-type": "application/json"}
            if problem:
                payload[UNDECODABLE] = problem
        properties = payload["properties"]
        info = properties.get("delivery_info")
        info = info if isinstance(info, dict) else {}
        info.update({"sqs_message": message, "sqs_queue": q_url})
        properties["delivery_info"] = info
        properties["delivery_tag"] = message["ReceiptHandle"]
        return payload


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


class Transport(SQS.Transport):  # type: ignore[misc]
    Channel = Channel
    #: held at most this long while the job store is down: under the visibility timeout (60 s), so that a
    #: held message is never delivered to another consumer meanwhile
    max_hold = 30.0
    reply_to_problem = staticmethod(queue_name_problem)


def connect(url: str, heartbeat: int = 0) -> Connection:
    """``sqs://key:secret@host:port``: kombu builds the endpoint from host and port, so an emulator on
    127.0.0.1 needs nothing more (and is spoken to over plain HTTP)."""
    params = parse_url(url)
    del params["transport"]
    options = {"region": "us-east-1", "wait_time_seconds": 1, "visibility_timeout": 60}
    if params.get("hostname") in {"127.0.0.1", "localhost", "::1"}:
        options["is_secure"] = False
    return Connection(transport=Transport, transport_options=options, **params)
