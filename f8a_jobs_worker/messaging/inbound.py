"""What arrived, made safe to send on: a body as bytes, text and headers any broker can publish again (a dead
letter keeps the original headers), and the queue names a reply may go to where names are file or SQS names.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,80}$")

#: header table depth kept when headers are published again (deeper parts become their repr)
MAX_HEADER_DEPTH = 8
MAX_HEADER_STRING = 4096


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
