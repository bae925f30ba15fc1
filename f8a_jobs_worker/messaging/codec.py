"""The JSON documents the worker sends (replies, events, flow runs): UTF-8, compact, any client reads them
with a JSON parser alone."""

from __future__ import annotations

import json
from typing import Any

# one encoder for the process: json.dumps() with options builds a new one per call
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def dumps(document: Any) -> bytes:
    return _ENCODER.encode(document).encode("utf-8")


def encode_reply(reply: dict[str, Any]) -> bytes:
    """A reply as UTF-8 JSON; a reply that cannot be encoded (text that is not valid Unicode) is replaced
    by an ``internal_error`` reply that can, so that a client always gets an answer."""
    try:
        return dumps(reply)
    except (UnicodeEncodeError, TypeError, ValueError) as exc:
        fallback = {
            "command_id": _ascii(reply.get("command_id")),
            "command": _ascii(reply.get("command")) if reply.get("command") is not None else None,
            "ok": False,
            "error": {
                "code": "internal_error",
                "message": f"the reply could not be encoded ({type(exc).__name__})",
                "details": [],
            },
        }
        return dumps(fallback)


def _ascii(value: Any) -> str:
    return str(value).encode("ascii", "backslashreplace").decode("ascii")
