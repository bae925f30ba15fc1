"""Decoding a command message: bytes and properties in, a validated :class:`Envelope` out.

Whatever can be learnt about the message (its ``command_id``, ``reply_to``, ``correlation_id``) is learnt
before anything can fail, so that even an undecodable command gets its error reply.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from f8a_jobs_worker.errors import InvalidJson, JobsError, UnknownCommand, ValidationFailed
from f8a_jobs_worker.validation import check, file_validator

MAX_BODY = 1024 * 1024


@dataclass
class Envelope:
    """A command as far as it could be decoded; ``command`` and ``args`` are set once it is valid."""

    command_id: str
    reply_to: str | None
    correlation_id: str
    command: str | None = None
    args: dict[str, Any] = field(default_factory=dict)


class Rejected(Exception):
    """A command that will never apply: the error to answer with and what was learnt of the envelope."""

    def __init__(self, envelope: Envelope, error: JobsError) -> None:
        super().__init__(error.message)
        self.envelope = envelope
        self.error = error


def decode(body: bytes, properties: Mapping[str, Any], known: Mapping[str, Any]) -> Envelope:
    """Parse and validate a command; raise :class:`Rejected` for invalid_json, validation_error and
    unknown_command. ``known`` maps command names to anything (only membership is used)."""
    envelope = Envelope(
        command_id=str(
            properties.get("message_id") or properties.get("correlation_id") or uuid.uuid4()
        ),
        reply_to=properties.get("reply_to") or None,
        correlation_id="",
    )
    envelope.correlation_id = str(properties.get("correlation_id") or envelope.command_id)
    if len(body) > MAX_BODY:
        raise Rejected(
            envelope,
            ValidationFailed(
                f"command body of {len(body)} bytes is over the limit of {MAX_BODY} bytes",
                [{"path": "$", "message": f"body larger than {MAX_BODY} bytes"}],
            ),
        )
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Rejected(envelope, InvalidJson(f"command body is not UTF-8 JSON: {exc}")) from None
    if isinstance(document, dict):
        _adopt(envelope, document, properties)
    try:
        check(file_validator("envelope.json"), document, "command envelope")
    except ValidationFailed as exc:
        raise Rejected(envelope, exc) from None
    envelope.command = document["command"]
    if envelope.command not in known:
        raise Rejected(
            envelope,
            UnknownCommand(
                f"unknown command {envelope.command!r}; known: {', '.join(sorted(known))}",
                [{"path": "$.command", "message": f"{envelope.command!r} is not a command"}],
            ),
        )
    envelope.args = document.get("args") or {}
    try:
        check(
            file_validator(f"commands/{envelope.command}.json"),
            envelope.args,
            f"arguments of {envelope.command}",
            root="$.args",
        )
    except ValidationFailed as exc:
        raise Rejected(envelope, exc) from None
    return envelope


def _adopt(envelope: Envelope, document: dict[str, Any], properties: Mapping[str, Any]) -> None:
    """Take command_id, reply_to and correlation_id from the body where the properties lack them."""
    if isinstance(document.get("command_id"), str) and 0 < len(document["command_id"]) <= 128:
        envelope.command_id = document["command_id"]
    if not envelope.reply_to and isinstance(document.get("reply_to"), str):
        envelope.reply_to = document["reply_to"] or None
    correlation = properties.get("correlation_id") or document.get("correlation_id")
    envelope.correlation_id = str(correlation or envelope.command_id)
    if isinstance(document.get("command"), str):
        envelope.command = document["command"]
