"""What goes back for a command: its reply, and for a command refused the copy kept in the dead-letter queue.

A reply goes to the command's ``reply_to`` with its ``correlation_id`` (one that was not UTF-8 as text, each
byte that is not written ``\\xNN``). A dead letter is the body byte for byte, the headers as far as they
can be published again, and why (``x-f8a-*`` headers, docs/messages.md).
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from f8a_jobs_worker.commands.envelope import Envelope
from f8a_jobs_worker.errors import JobsError
from f8a_jobs_worker.messaging.codec import encode_reply
from f8a_jobs_worker.messaging.inbound import safe_headers, safe_text
from f8a_jobs_worker.messaging.port import Delivery, Outgoing

#: reply codes whose command is also kept in the dead-letter queue (the others never reach it)
DEAD_LETTER_CODES = frozenset(
    {"invalid_json", "validation_error", "unknown_command", "internal_error"}
)
#: the properties a dead letter keeps, under ``x-f8a-original-properties``
KEPT_PROPERTIES = ("reply_to", "correlation_id", "message_id", "content_type", "content_encoding")


def reply_of(envelope: Envelope, body: bytes) -> Outgoing | None:
    """The reply message to ``envelope``'s publisher (None: no address to answer to)."""
    if not envelope.reply_to:
        return None
    return Outgoing(
        body,
        queue=envelope.reply_to,
        correlation_id=envelope.correlation_id,
    )


def error_reply(envelope: Envelope, error: JobsError, under_args: bool = False) -> dict[str, Any]:
    """An error reply; ``under_args`` moves the facade's paths (``$.kwargs.x``) under ``$.args``."""
    body = error.to_dict()
    if under_args:
        body["details"] = [_under_args(detail) for detail in body["details"]]
    return {
        "command_id": envelope.command_id,
        "command": envelope.command,
        "ok": False,
        "error": body,
    }


def ok_reply(envelope: Envelope, result: dict[str, Any]) -> dict[str, Any]:
    return {
        "command_id": envelope.command_id,
        "command": envelope.command,
        "ok": True,
        "result": result,
    }


def _under_args(detail: dict[str, Any]) -> dict[str, Any]:
    """The facade names fields from its arguments (``$.kwargs.x``); on the wire they sit under ``$.args``."""
    path = str(detail.get("path", "$"))
    if path.startswith("$.") and not path.startswith("$.args"):
        return {**detail, "path": "$.args" + path[1:]}
    return detail


def error_message(envelope: Envelope, error: JobsError) -> Outgoing | None:
    return reply_of(envelope, encode_reply(error_reply(envelope, error)))


def dead_letter(delivery: Delivery, error: JobsError, queue: str, now: datetime) -> Outgoing:
    """The copy of a refused message for the dead-letter queue ``queue``, kept at ``now``."""
    properties = {
        key: safe_text(value, 255)
        for key in KEPT_PROPERTIES
        if (value := delivery.properties.get(key)) is not None
    }
    if delivery.raw_correlation_id is not None:
        properties["correlation_id"] = safe_text(delivery.raw_correlation_id, 255)
    headers = {
        **safe_headers(delivery.headers),
        "x-f8a-reason": error.code,
        "x-f8a-error": safe_text(error.message, 1000),
        "x-f8a-original-properties": properties,
        "x-f8a-dead-at": now.timestamp(),
    }
    if delivery.raw_properties:
        headers["x-f8a-raw-properties"] = base64.b64encode(delivery.raw_properties).decode("ascii")
    return Outgoing(
        delivery.body,
        queue=queue,
        headers=headers,
        content_type=safe_text(
            delivery.properties.get("content_type") or "application/octet-stream", 255
        ),
        content_encoding=safe_text(delivery.properties.get("content_encoding") or "binary", 255),
    )
