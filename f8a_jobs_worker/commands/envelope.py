"""Decoding a command message: a delivery in, a validated :class:`Envelope` (or why it is refused) out.

Whatever can be learnt about the message (its ``command_id``, ``reply_to``, ``correlation_id``) is learnt
before anything can fail, so that even an undecodable command gets its error reply.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from f8a_jobs_worker.access.gate import Gate
from f8a_jobs_worker.access.principal import ANONYMOUS, Principal
from f8a_jobs_worker.access.signing import Seal
from f8a_jobs_worker.errors import (
    InvalidJson,
    JobsError,
    UnknownCommand,
    Untrusted,
    ValidationFailed,
)
from f8a_jobs_worker.messaging.port import Delivery
from f8a_jobs_worker.validation import check, file_validator

MAX_BODY = 1024 * 1024
#: containers nested deeper than this are refused before anything recurses into them (the schemas cannot say it)
MAX_DEPTH = 32
#: integers beyond this lose precision in JavaScript and most JSON parsers (I-JSON, RFC 7493)
MAX_SAFE_INTEGER = 2**53 - 1
#: how many input problems a reply lists
MAX_PROBLEMS = 20
_PLAIN_KEY = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")


@dataclass
class Envelope:
    """A command as far as it could be decoded: ``command`` and ``args`` once it is valid, else the error
    that refuses it (``refusal``), with what was learnt of the envelope before (its reply address)."""

    command_id: str
    reply_to: str | None
    correlation_id: str
    command: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    refusal: JobsError | None = None
    #: who sent it, as the broker or a signature vouches (never the body)
    principal: Principal = ANONYMOUS
    #: its signature, where one vouched for it
    seal: Seal | None = None
    #: delivered before (a signed copy seen again is then not a replay)
    redelivered: bool = False


def decode(
    delivery: Delivery,
    known: Mapping[str, Any],
    reply_to_problem: Callable[[str], str | None] = lambda _: None,
    gate: Gate | None = None,
) -> Envelope:
    """Parse and validate a command: an :class:`Envelope` whose ``refusal`` is invalid_json,
    validation_error, unknown_command or forbidden if it never applies. ``known`` maps command names to
    anything (only membership is used); ``reply_to_problem`` says why a reply address cannot be used on this
    broker. With a ``gate``: identity and signature first, then the envelope, then the policy, then the
    arguments."""
    envelope = _addressed(delivery)
    envelope.redelivered = delivery.redelivered
    try:
        if gate is not None:
            identity = gate.identify(delivery)
            envelope.principal, envelope.seal = identity.principal, identity.seal
        document = _checked(delivery, envelope, reply_to_problem)
        _validate(envelope, document, known, gate)
    except Untrusted as refusal:
        _learn_address(delivery, envelope)
        envelope.principal = refusal.principal or envelope.principal
        envelope.refusal = refusal
    except JobsError as refusal:
        envelope.refusal = refusal
    return envelope


def _learn_address(delivery: Delivery, envelope: Envelope) -> None:
    """What the body says of the command's id, reply address and name, where it says it (never raises):
    a refused sender is still answered where it asked."""
    try:
        document = _parse(delivery.body)
    except InvalidJson:
        return
    if isinstance(document, dict):
        _adopt(envelope, document, delivery)


def _addressed(delivery: Delivery) -> Envelope:
    """What the properties say of the command's id and reply address, learnt before anything can fail."""
    properties = delivery.properties
    command_id = (
        _text(properties, "message_id", 128)
        or _text(properties, "correlation_id", 128)
        or str(uuid.uuid4())
    )
    return Envelope(
        command_id=command_id,
        reply_to=_text(properties, "reply_to"),
        correlation_id=_text(properties, "correlation_id") or _escaped(delivery) or command_id,
    )


def _escaped(delivery: Delivery) -> str | None:
    """A correlation id that is not UTF-8, as text: each byte that is not written ``\\xNN``. Its reply
    carries that (bytes that are not UTF-8 would fail the reader of many a client library)."""
    raw = delivery.raw_correlation_id
    return None if raw is None else raw.decode("utf-8", "backslashreplace")[:255]


def _checked(
    delivery: Delivery, envelope: Envelope, reply_to_problem: Callable[[str], str | None]
) -> Any:
    """The body's JSON document, what it says of the envelope adopted; what the broker could not decode
    and what no schema can say (depth, strings, numbers) refused first."""
    body, problem = delivery.body, delivery.problem
    if len(body) > MAX_BODY:
        raise ValidationFailed(
            f"command body of {len(body)} bytes is over the limit of {MAX_BODY} bytes",
            [{"path": "$", "message": f"body larger than {MAX_BODY} bytes"}],
        )
    try:
        document = _parse(body)
    except InvalidJson:
        if not problem:
            raise
        document = None  # what the broker could not decode is the first thing to tell
    if isinstance(document, dict):
        _adopt(envelope, document, delivery)
    _check_reply_to(envelope, reply_to_problem)
    if problem:
        raise ValidationFailed(problem, [{"path": "$", "message": problem}])
    found = problems(document)
    if found:
        raise ValidationFailed(f"invalid command: {_summary(found)}", found)
    return document


def _validate(
    envelope: Envelope, document: Any, known: Mapping[str, Any], gate: Gate | None
) -> None:
    """The envelope, the policy on it, then the command's arguments against their schemas."""
    check(file_validator("envelope.json"), document, "command envelope")
    envelope.command = document["command"]
    if envelope.command not in known:
        raise UnknownCommand(
            f"unknown command {envelope.command!r}; known: {', '.join(sorted(known))}",
            [{"path": "$.command", "message": f"{envelope.command!r} is not a command"}],
        )
    envelope.args = document.get("args") or {}
    if envelope.seal is not None and envelope.seal.command_id != envelope.command_id:
        raise Untrusted(
            f"signature refused: it signs command {envelope.seal.command_id!r}, "
            f"not {envelope.command_id!r}"
        )
    if gate is not None:
        gate.permit(envelope.principal, envelope.command, envelope.args)
    check(
        file_validator(f"commands/{envelope.command}.json"),
        envelope.args,
        f"arguments of {envelope.command}",
        root="$.args",
    )


def _parse(body: bytes) -> Any:
    """JSON as RFC 8259 has it: UTF-8, no NaN or Infinity; any failure is invalid_json."""
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_not_json)
    except RecursionError:
        reason = "nested too deeply"
    except (
        UnicodeDecodeError,
        ValueError,
    ) as exc:  # JSONDecodeError, NaN, integers of 4300+ digits
        reason = str(exc)[:300]
    raise InvalidJson(f"command body is not UTF-8 JSON: {reason}")


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def problems(document: Any) -> list[dict[str, str]]:
    """What no schema can say and no part of the worker can take: nesting deeper than :data:`MAX_DEPTH`,
    strings with U+0000 (PostgreSQL cannot store it) or unpaired surrogates (not UTF-8), numbers that are
    not finite or integers beyond :data:`MAX_SAFE_INTEGER`. At most :data:`MAX_PROBLEMS`, each with its path.
    """
    found: list[dict[str, str]] = []
    stack: list[tuple[str, Any, int]] = [("$", document, 0)]
    while stack and len(found) < MAX_PROBLEMS:
        path, value, depth = stack.pop()
        if isinstance(value, dict | list) and depth >= MAX_DEPTH:
            found.append({"path": path, "message": f"nested deeper than {MAX_DEPTH} levels"})
            continue
        if isinstance(value, dict):
            for key, item in reversed(value.items()):
                child = _child_path(path, key)
                if reason := string_problem(key):
                    found.append({"path": child, "message": f"the key {reason}"})
                stack.append((child, item, depth + 1))
        elif isinstance(value, list):
            stack.extend(
                (f"{path}[{i}]", item, depth + 1) for i, item in reversed(list(enumerate(value)))
            )
        elif isinstance(value, str):
            if reason := string_problem(value):
                found.append({"path": path, "message": f"the string {reason}"})
        elif isinstance(value, float) and not math.isfinite(value):
            found.append({"path": path, "message": "the number is out of range"})
        elif (
            isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SAFE_INTEGER
        ):
            found.append(
                {
                    "path": path,
                    "message": f"integers are limited to +-{MAX_SAFE_INTEGER} (2^53 - 1)",
                }
            )
    return found


def string_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored and sent back as UTF-8, or None."""
    if "\x00" in text:
        return "contains U+0000"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired surrogate (not valid Unicode)"
    return None


def _child_path(path: str, key: str) -> str:
    if _PLAIN_KEY.match(key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key)}]"  # escaped: the path itself is always valid UTF-8


def _summary(found: list[dict[str, str]]) -> str:
    summary = "; ".join(f"{v['path']}: {v['message']}" for v in found[:3])
    return summary + (f" (and {len(found) - 3} more)" if len(found) > 3 else "")


def _text(source: Mapping[str, Any], key: str, limit: int = 255) -> str | None:
    """A string property or field that can be used as an id or address, else None."""
    value = source.get(key)
    if not isinstance(value, str) or not value or len(value) > limit or string_problem(value):
        return None
    return value


def _adopt(envelope: Envelope, document: dict[str, Any], delivery: Delivery) -> None:
    """Take command_id, reply_to and correlation_id from the body where the properties lack them."""
    envelope.command_id = _text(document, "command_id", 128) or envelope.command_id
    if not envelope.reply_to:
        envelope.reply_to = _text(document, "reply_to")
    envelope.correlation_id = (
        _text(delivery.properties, "correlation_id")
        or _escaped(delivery)
        or _text(document, "correlation_id")
        or envelope.command_id
    )
    if isinstance(document.get("command"), str) and not string_problem(document["command"]):
        envelope.command = document["command"][:64]


def _check_reply_to(envelope: Envelope, reply_to_problem: Callable[[str], str | None]) -> None:
    """A reply address the transport cannot use is refused (and not answered to)."""
    if envelope.reply_to is None:
        return
    reason = reply_to_problem(envelope.reply_to)
    if reason:
        envelope.reply_to = None
        raise ValidationFailed(f"reply_to: {reason}", [{"path": "$.reply_to", "message": reason}])
