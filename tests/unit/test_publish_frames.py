"""The worker's own ``basic.publish`` frames are byte for byte py-amqp's for the same message (a py-amqp
upgrade that changes its framing fails here), for any properties, body sizes and frame sizes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import amqp
import pytest
from amqp import method_framing, spec
from amqp.serialization import dumps
from hypothesis import given, settings
from hypothesis import strategies as st

from f8a_jobs_worker.messaging.publish_frames import encode_properties, publish_frames


class _Connection:
    def __init__(self, frame_max: int) -> None:
        self.frame_max = frame_max
        self.bytes_sent = 0


class _Socket:
    def __init__(self) -> None:
        self.written = bytearray()

    def write(self, data: Any) -> None:
        self.written += data


def _py_amqp(
    frame_max: int, channel: int, exchange: str, key: str, body: bytes, properties: dict[str, Any]
) -> bytes:
    socket = _Socket()
    writer = method_framing.frame_writer(_Connection(frame_max), socket)
    arguments = dumps("Bssbb", (0, exchange, key, False, False))
    writer(1, channel, spec.Basic.Publish, arguments, amqp.Message(body, **properties))
    return bytes(socket.written)


def _ours(
    frame_max: int, channel: int, exchange: str, key: str, body: bytes, properties: dict[str, Any]
) -> bytes:
    return publish_frames(channel, exchange, key, encode_properties(properties), body, frame_max)


REPLY = {
    "content_type": "application/json",
    "content_encoding": "utf-8",
    "delivery_mode": 2,
    "user_id": "guest",
    "correlation_id": "c-1",
    "message_id": "m-1",
}


@pytest.mark.parametrize(
    ("frame_max", "body"),
    [
        (131072, b'{"ok":true}'),
        (131072, b""),
        (4096, b"x" * 4088),  # exactly one frame's worth
        (4096, b"y" * 10_000),  # three body frames
        (4096, b"z" * 4000),  # fits alone, not with its method and header
    ],
)
def test_frames_match_py_amqp_for_every_body_size(frame_max: int, body: bytes) -> None:
    args = (frame_max, 1, "f8a.events", "job.executed", body, REPLY)
    assert _ours(*args) == _py_amqp(*args)


def test_every_property_kind_matches_py_amqp() -> None:
    properties = {
        **REPLY,
        "application_headers": {
            "x-f8a-signature": "abc",
            "n": 7,
            "nested": {"list": [1, "two", 3.5, True, None]},
            "when": datetime(2026, 12, 7, 18, 0, tzinfo=UTC),
        },
        "priority": 5,
        "reply_to": "amq.gen-Žluťoučký",
        "expiration": "60000",
        "timestamp": 1_796_000_000,
        "type": "t",
        "app_id": "f8a",
        "cluster_id": "c",
    }
    args = (131072, 3, "", "f8a_jobs_replies", b"{}", properties)
    assert _ours(*args) == _py_amqp(*args)


def test_a_short_string_longer_than_255_bytes_is_refused() -> None:
    with pytest.raises(Exception, match="format requires"):
        encode_properties({"correlation_id": "é" * 128})


_text = st.text(max_size=80)


@settings(max_examples=200, deadline=None)
@given(
    frame_max=st.integers(min_value=512, max_value=8192),
    channel=st.integers(min_value=1, max_value=2047),
    exchange=_text,
    key=_text,
    body=st.binary(max_size=20_000),
    properties=st.fixed_dictionaries(
        {},
        optional={
            "content_type": _text,
            "correlation_id": _text,
            "message_id": _text,
            "reply_to": _text,
            "user_id": _text,
            "delivery_mode": st.sampled_from([1, 2]),
            "application_headers": st.dictionaries(
                st.text(min_size=1, max_size=20), st.one_of(_text, st.integers(-(2**31), 2**31))
            ),
        },
    ),
)
def test_any_message_is_framed_as_py_amqp_frames_it(
    frame_max: int, channel: int, exchange: str, key: str, body: bytes, properties: dict[str, Any]
) -> None:
    args = (frame_max, channel, exchange, key, body, properties)
    assert _ours(*args) == _py_amqp(*args)
