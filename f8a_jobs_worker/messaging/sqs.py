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

from kombu.transport import SQS

from f8a_jobs_worker.messaging.inbound import UNDECODABLE, VirtualMessage, queue_name_problem


class Channel(SQS.Channel):  # type: ignore[misc]
    Message = VirtualMessage

    def _message_to_python(self, message: dict[str, Any], queue_name: str, q_url: str) -> Any:
        raw = message.get("Body") or ""
        payload = _kombu_envelope(raw)
        if payload is None:
            payload = {"body": raw, "properties": {}, "content-type": "application/json"}
        properties = payload.setdefault("properties", {})
        if not isinstance(
            properties, dict
        ):  # kept for the consumer to report; delivery needs a table
            payload[UNDECODABLE] = "the message properties are not an object"
            properties = payload["properties"] = {}
        info = properties.get("delivery_info")
        info = info if isinstance(info, dict) else {}
        info.update({"sqs_message": message, "sqs_queue": q_url})
        properties["delivery_info"] = info
        properties["delivery_tag"] = message["ReceiptHandle"]
        return payload


def _kombu_envelope(raw: str) -> dict[str, Any] | None:
    """kombu's envelope (base64 of JSON with ``body`` and ``properties``), or None for any other body."""
    try:
        document = json.loads(base64.b64decode(raw, validate=True))
    except (binascii.Error, ValueError, RecursionError):
        return None
    if isinstance(document, dict) and "body" in document and "properties" in document:
        return document
    return None


class Transport(SQS.Transport):  # type: ignore[misc]
    Channel = Channel
    #: held at most this long while the job store is down: under the visibility timeout (60 s), so that a
    #: held message is never delivered to another consumer meanwhile
    max_hold = 30.0
    reply_to_problem = staticmethod(queue_name_problem)
