"""What arrived: a message's body as bytes and its metadata as far as it could be decoded, on every transport.

The consumer must answer or dead-letter any message, whatever a publisher put in it. The transports' message
classes (:mod:`.amqp`, :mod:`.sqs`, :mod:`.embedded`) hand it the body exactly as it arrived and, in
``problem``, why its properties or envelope could not be decoded. This module has the parts they share and
the one way metadata is made safe to publish again (dead letters keep the original headers).
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from kombu.message import Message as BaseMessage
from kombu.transport import virtual

_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,80}$")

#: property key under which a transport's decoder reports what it could not decode
UNDECODABLE = "x-f8a-undecodable"
#: header table depth kept when headers are published again (deeper parts become their repr)
MAX_HEADER_DEPTH = 8
MAX_HEADER_STRING = 4096


class VirtualMessage(virtual.Message):  # type: ignore[misc]
    """kombu's message of the virtual transports (SQS, embedded), built without ever raising.

    kombu's own raises on a payload of the wrong shape (headers that are not a table, a body it cannot
    decode) from inside the consumer's poll, where the message would come back forever; here such a
    payload becomes a message with ``problem`` set, and the body is kept as it arrived (no decompression).
    """

    def __init__(self, payload: Any, channel: Any = None, **kwargs: Any) -> None:
        self._raw = payload
        problems: list[str] = []
        payload = payload if isinstance(payload, dict) else {}
        properties = payload.get("properties")
        if not isinstance(properties, dict):
            problems.append("the message properties are not an object")
            properties = {}
        headers = payload.get("headers")
        if headers is not None and not isinstance(headers, dict):
            problems.append("the message headers are not an object")
            headers = None
        body = payload.get("body")
        try:
            if body:
                body = channel.decode_body(body, properties.get("body_encoding"))
        except Exception as exc:
            problems.append(f"the body cannot be decoded ({type(exc).__name__})")
        if problem := payload.get(UNDECODABLE):
            problems.insert(0, str(problem))
        BaseMessage.__init__(
            self,
            body=None,
            channel=channel,
            delivery_tag=properties.get("delivery_tag"),
            content_type=_text_or_none(payload.get("content-type")),
            content_encoding=_text_or_none(payload.get("content-encoding")),
            headers=headers,
            properties=properties,
            delivery_info=properties.get("delivery_info") or {},
            **kwargs,
        )
        self.body = as_bytes(body)
        self.errors: list[Any] = []
        self.problem: str | None = "; ".join(problems) or None
        self.raw_properties: bytes | None = None


def queue_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a reply queue on a transport that names queues like SQS does, or None."""
    if _QUEUE_NAME.match(name):
        return None
    return "a queue name here is 1 to 80 letters, digits, '_', '-' or '.'"


def as_bytes(body: Any) -> bytes:
    """A body as bytes: str bodies (virtual transports) as UTF-8, lone surrogates kept as they were."""
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, bytearray | memoryview):
        return bytes(body)
    return str(body).encode("utf-8", "surrogatepass")


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def safe_text(value: Any, limit: int = MAX_HEADER_STRING) -> str:
    """Text that every transport can publish: valid UTF-8 (undecodable parts escaped), at most ``limit``."""
    if isinstance(value, bytes | bytearray | memoryview):
        text = bytes(value).decode("utf-8", "backslashreplace")
    else:
        text = str(value)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text.replace("\x00", "\\x00")[:limit]


def safe_headers(headers: Any, depth: int = 0) -> dict[str, Any]:
    """A copy of a message's headers that can be published on any transport: string keys, JSON-like
    values (timestamps as ISO text, decimals and bytes as text), bounded depth and string length."""
    if not isinstance(headers, dict):
        return {}
    return {safe_text(key, 255): _safe_value(value, depth + 1) for key, value in headers.items()}


def _safe_value(value: Any, depth: int) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else safe_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else safe_text(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return safe_text(value)
    if depth >= MAX_HEADER_DEPTH:
        return safe_text(repr(value))
    if isinstance(value, dict):
        return safe_headers(value, depth)
    if isinstance(value, list | tuple):
        return [_safe_value(item, depth + 1) for item in value[:100]]
    return safe_text(value)
