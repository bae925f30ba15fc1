"""Whatever a client sends, the code answers with a client error code, never an unexpected exception.

Property tests with hypothesis, in process and fast: command decoding takes any bytes; job arguments that pass
the job.create schema are either turned into a schedule APScheduler can compute or refused as
invalid_schedule / validation_error / unknown_handler; replies are always encodable. The same inputs go through
a worker process on RabbitMQ and SQS in test_hostile.py.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from f8a_jobs_worker.commands.applier import COMMANDS
from f8a_jobs_worker.commands.envelope import MAX_DEPTH, decode, problems
from f8a_jobs_worker.errors import JobsError
from f8a_jobs_worker.handlers import HandlerRegistry
from f8a_jobs_worker.messaging.codec import encode_reply
from f8a_jobs_worker.messaging.port import Delivery
from f8a_jobs_worker.scheduling.schedule import parse_when
from f8a_jobs_worker.scheduling.spec import JobSpec
from f8a_jobs_worker.validation import file_validator, violations
from tests.hostile import ODD_TEXT, body, json_value, number, plausible, schedule_value

FAST = settings(
    max_examples=int(os.environ.get("F8A_FUZZ_EXAMPLES") or 300),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
REGISTRY = HandlerRegistry.discover()


@FAST
@given(st.one_of(body(), st.binary(max_size=300)))
def test_any_bytes_decode_to_a_command_or_a_client_error(raw: bytes) -> None:
    envelope = decode(Delivery(raw), COMMANDS)
    if envelope.refusal is not None:
        assert envelope.refusal.code in {"invalid_json", "validation_error", "unknown_command"}
        encode_reply({"command_id": envelope.command_id, "error": envelope.refusal.to_dict()})
    else:
        assert envelope.command in COMMANDS


@FAST
@given(plausible.map(lambda document: document["args"]).filter(lambda a: "handler" in a))
def test_job_arguments_that_pass_the_schema_schedule_or_are_refused(args: dict) -> None:
    if violations(file_validator("commands/job.create.json"), args) or problems(args):
        return
    now = datetime.now(UTC)
    try:
        fields = {k: v for k, v in args.items() if k != "replace"}  # (the facade takes that one)
        spec = JobSpec.parse(REGISTRY, 3600, now=now, **fields)
    except JobsError as exc:
        assert exc.code in {"invalid_schedule", "validation_error", "unknown_handler"}, exc
        return
    first = spec.schedule.trigger.get_next_fire_time(None, now)
    if first is not None:  # and the run after it, as the scheduler computes it when the job fires
        spec.schedule.trigger.get_next_fire_time(first, first + timedelta(seconds=1))


@FAST
@given(st.one_of(st.sampled_from(ODD_TEXT), schedule_value, st.datetimes()))
def test_when_is_a_time_in_range_or_invalid_schedule(value: object) -> None:
    try:
        moment = parse_when(value, datetime.now(UTC))
    except JobsError as exc:
        assert exc.code == "invalid_schedule"
    else:
        assert moment is None or 1970 <= moment.year < 9000


@FAST
@given(json_value)
def test_problems_name_every_value_no_part_of_the_worker_can_take(document: object) -> None:
    found = problems(document)
    if not found:  # then it is valid UTF-8 JSON within the bounds, and stays so when sent back
        text = json.dumps(document, ensure_ascii=False, allow_nan=False)
        text.encode("utf-8")
        assert "\x00" not in text.replace("\\u0000", "")
    for problem in found:
        json.dumps(problem, ensure_ascii=False).encode("utf-8")  # paths and messages are sendable


@pytest.mark.parametrize(
    ("raw", "code", "fragment"),
    [
        (b'{"command": "job.list", "args": {"limit": NaN}}', "invalid_json", "NaN"),
        (b'{"command": "job.list", "args": {"offset": ' + b"9" * 5000 + b"}}", "invalid_json", ""),
        (b"[" * 100_000 + b"]" * 100_000, "invalid_json", "nested too deeply"),
        (b'{"command": "job.list", "args": {"limit": 1e999}}', "validation_error", "out of range"),
        (b'{"command": "job.get", "args": {"job_id": "a\\u0000b"}}', "validation_error", "U+0000"),
        (b'{"command": "job.get", "args": {"job_id": "\\ud800"}}', "validation_error", "surrogate"),
        (b'{"command": "job.\\ud800"}', "validation_error", "surrogate"),
        (
            b'{"command": "job.list", "args": {"offset": 18446744073709551616}}',
            "validation_error",
            "2^53",
        ),
        (
            json.dumps(
                {"command": "job.create", "args": {"handler": "noop", "kwargs": {"m": [[]]}}}
            )
            .replace("[[]]", "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5))
            .encode(),
            "validation_error",
            f"deeper than {MAX_DEPTH}",
        ),
    ],
)
def test_known_poison_bodies(raw: bytes, code: str, fragment: str) -> None:
    envelope = decode(Delivery(raw, {"reply_to": "r", "correlation_id": "c"}), COMMANDS)
    assert envelope.refusal is not None and envelope.refusal.code == code
    assert fragment in envelope.refusal.message + json.dumps(envelope.refusal.details)
    assert envelope.reply_to == "r"  # still answered


def test_properties_that_cannot_be_ids_or_addresses_are_not_used() -> None:
    envelope = decode(
        Delivery(
            b'{"command": "scheduler.state"}',
            {"message_id": "\ud800", "correlation_id": b"raw", "reply_to": "x" * 300},
        ),
        COMMANDS,
    )
    assert envelope.reply_to is None
    assert envelope.command_id != "\ud800"
    encode_reply({"command_id": envelope.command_id, "ok": True})


def test_a_reply_that_cannot_be_encoded_becomes_an_internal_error_that_can() -> None:
    reply = json.loads(encode_reply({"command_id": "a\udc80", "command": "job.get", "ok": True}))
    assert reply["ok"] is False and reply["error"]["code"] == "internal_error"
    assert reply["command_id"] == "a\\udc80"


@FAST
@given(number)
def test_numbers_for_spans_are_bounded(value: float) -> None:
    try:
        JobSpec.parse(REGISTRY, 3600, handler="noop", periodically=value, now=datetime.now(UTC))
    except JobsError as exc:
        assert exc.code == "invalid_schedule"
