"""A hostile or careless publisher's messages, generated with hypothesis.

Bodies: envelopes of every command with odd values in every field (huge and tiny numbers, NaN, calendar
edges, control characters, unpaired surrogates, deep nesting, wrong types), raw bytes and broken JSON, each
encoded in several ways. Metadata: odd content types and encodings, ``compression`` headers, headers of every
type, odd message ids. Each message carries the test's own ``correlation_id`` so that its reply can be found,
and its body is unique so that its dead letter can be.
"""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

SCHEMAS = Path(__file__).parents[1] / "schemas" / "commands"
COMMANDS = sorted(p.stem for p in SCHEMAS.glob("*.json"))
FIELDS = {
    c: sorted(json.loads((SCHEMAS / f"{c}.json").read_text()).get("properties", {}))
    for c in COMMANDS
}

ODD_TEXT = [
    "\ud800",
    "a\udfffb",
    "\x00",
    "nul\x00id",
    "\u2028\u2029",
    "\ufeff",
    "\x1b[31m",
    "x" * 300,
    "é" * 200,
    "9999-12-31T23:59:59+00:00",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "0001-01-01",
    "1969-12-31T23:59:59Z",
    "Feb 29",
    "Mon Feb 30, 14:56",
    "2026-02-29T00:00:00",
    "1e400",
    "-1",
    "NaN",
    "inf",
    "0.0000001",
    "99999999999999999999 weeks",
    "100001 days",
    "1 month",
    "* * 31 2 *",
    "0 0 30 2 *",
    "*/0 * * * *",
    "0-99999999999999 * * * *",
    "* * * * */99999999999",
    "60 24 32 13 8",
    "running",
    "paused",
    "all",
    "failed",
    "noop",
    "flow_scheduling",
    "selective_flow_scheduling",
    "fail",
    "../../etc/passwd",
    "$filter",
]
ODD_NUMBERS = [
    0,
    -1,
    1,
    2**31,
    2**53,
    2**53 + 1,
    2**63,
    -(2**63) - 1,
    2**64,
    10**30,
    10**300,
    1e308,
    1e-308,
    5e-324,
    -0.0,
    0.5,
    float("nan"),
    float("inf"),
    float("-inf"),
]
HANDLERS = ["noop", "flow_scheduling", "selective_flow_scheduling", "fail", "teleport"]

text = st.one_of(st.text(max_size=30), st.sampled_from(ODD_TEXT))
number = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(ODD_NUMBERS),
)
leaf = st.one_of(st.none(), st.booleans(), number, text)
json_value = st.recursive(
    leaf,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(text, children, max_size=4)
    ),
    max_leaves=10,
)


def deep(depth: int) -> Any:
    value: Any = "bottom"
    for level in range(depth):
        value = [value] if level % 2 else {"d": value}
    return value


field_value = st.one_of(
    json_value,
    st.sampled_from(HANDLERS),
    st.builds(deep, st.sampled_from([33, 40, 200])),
    st.fixed_dictionaries({"$filter": json_value}),
    st.fixed_dictionaries(
        {"table": st.sampled_from(["packages", "versions", "analyses", "pg_user"])},
        optional={"where": json_value, "select": json_value, "limit": number},
    ),
)


schedule_value = st.one_of(st.sampled_from(ODD_TEXT), number, st.text(max_size=20), st.none())
id_value = st.one_of(st.sampled_from(ODD_TEXT), st.text(min_size=1, max_size=30), number)
plausible = st.one_of(
    st.fixed_dictionaries(
        {
            "command": st.just("job.create"),
            "args": st.fixed_dictionaries(
                {"handler": st.sampled_from(HANDLERS)},
                optional={
                    field: schedule_value
                    for field in ("periodically", "cron", "when", "jitter", "misfire_grace_time")
                }
                | {
                    "job_id": id_value,
                    "state": st.sampled_from(["running", "paused", "broken", ""]),
                    "replace": st.booleans(),
                    "kwargs": st.one_of(
                        st.fixed_dictionaries({}, optional={"message": text}),
                        st.fixed_dictionaries(
                            {"flow_name": text},
                            optional={"flow_arguments": st.lists(json_value, max_size=3)},
                        ),
                    ),
                },
            ),
        }
    ),
    st.fixed_dictionaries(
        {
            "command": st.just("job.list"),
            "args": st.fixed_dictionaries(
                {},
                optional={
                    "limit": number,
                    "offset": number,
                    "job_type": st.sampled_from(["all", "user", "default", "failed", "x"]),
                },
            ),
        }
    ),
    st.fixed_dictionaries(
        {
            "command": st.sampled_from(
                ["job.get", "job.pause", "job.resume", "job.delete", "job.run_now", "job.history"]
            ),
            "args": st.fixed_dictionaries({"job_id": id_value}, optional={"limit": number}),
        }
    ),
)


@st.composite
def envelope(draw: Callable[..., Any]) -> Any:
    if draw(st.integers(0, 9)) < 4:
        return draw(plausible)
    known = st.sampled_from(COMMANDS)
    command = draw(st.one_of(known, known, known, text))
    fields = FIELDS.get(command) or ["job_id"]
    args = draw(
        st.dictionaries(
            st.one_of(st.sampled_from(fields), text), field_value, max_size=len(fields) + 1
        )
    )
    document: dict[str, Any] = {"command": command, "args": args}
    if draw(st.booleans()):
        document["command_id"] = draw(st.one_of(text, number))
    if draw(st.integers(0, 9)) == 0:
        document = draw(st.one_of(json_value, st.just(deep(600))))
    return document


def encode(document: Any, how: str) -> bytes:
    if how == "escaped":  # unpaired surrogates become \\udXXX escapes, NaN stays NaN
        return json.dumps(document, ensure_ascii=True).encode("ascii")
    if how == "raw":  # surrogates as (invalid) UTF-8 bytes
        return json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return json.dumps(document, ensure_ascii=False).encode("utf-16", "surrogatepass")


garbage = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(
        [
            b"",
            b"{",
            b'{"command": "job.get", ',
            b"\xef\xbb\xbf{}",
            b'{"command":"job.get","args":{"job_id":"' + b"\xff" * 4 + b'"}}',
            b'{"command": "job.list", "args": {"offset": ' + b"9" * 5000 + b"}}",
            b'{"command": "job.list", "args": {"limit": NaN}}',
            b'{"command": "job.list", "args": {"limit": 1e999}}',
            b"[" * 100_000 + b"]" * 100_000,
            b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
            b'{"command": "job.create", "args": {"handler": "noop", "kwargs": {"message": '
            + b"[" * 5000
            + b"]" * 5000
            + b"}}}",
        ]
    ),
)


@st.composite
def body(draw: Callable[..., Any]) -> bytes:
    if draw(st.integers(0, 5)) == 0:
        return bytes(draw(garbage))
    how = draw(st.sampled_from(["escaped"] * 5 + ["raw", "utf16"]))
    return encode(draw(envelope()), how)


header_value = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20).filter(lambda t: "\x00" not in t and _encodable(t)),
    st.lists(st.integers(min_value=0, max_value=9), max_size=3),
    st.dictionaries(st.sampled_from(["a", "b", "x-death"]), st.integers(0, 9), max_size=2),
)


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@st.composite
def metadata(draw: Callable[..., Any]) -> dict[str, Any]:
    headers = draw(
        st.dictionaries(
            st.text(min_size=1, max_size=12).filter(_encodable), header_value, max_size=3
        )
    )
    if draw(st.integers(0, 5)) == 0:
        headers["compression"] = draw(st.sampled_from(["application/zlib", "gzip", "bogus"]))
    return {
        "content_type": draw(
            st.sampled_from(
                ["application/json", "text/plain", "application/x-python-serialize", "é", ""]
            )
        ),
        "content_encoding": draw(
            st.sampled_from(["utf-8", "binary", "latin-1", "utf-16", "rot13", "zlib"])
        ),
        "headers": headers,
        "message_id": draw(
            st.one_of(st.none(), st.text(max_size=40).filter(lambda t: _encodable(t)))
        ),
    }


@dataclass
class Hostile:
    """One message to send: its body, its metadata, and the correlation id its reply will carry."""

    body: bytes
    correlation_id: str
    meta: dict[str, Any] = field(default_factory=dict)


def corpus(count: int, run_seed: int) -> list[Hostile]:
    """``count`` messages with unique bodies: every example hypothesis generates (its first ones are the
    simplest, the later ones random), small lists each, since hypothesis bounds one example's size."""
    drawn: list[tuple[bytes, dict[str, Any]]] = []

    @settings(
        max_examples=2 * count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @seed(run_seed)
    @given(st.lists(st.tuples(body(), metadata()), min_size=1, max_size=6))
    def draw(found: list[tuple[bytes, dict[str, Any]]]) -> None:
        drawn.extend(found)

    draw()
    rng = random.Random(run_seed)
    messages: list[Hostile] = []
    seen: set[bytes] = set()
    ids: set[str] = set()
    for raw, meta in drawn:
        # hypothesis repeats values on purpose: two messages naming the same command_id (by message_id or
        # in the body) are one command sent twice, answered from the first one's stored reply, which
        # idempotency's own tests check; here each message is a command of its own
        named = {meta.get("message_id"), _command_id_in(raw)} - {None, ""}
        if raw in seen or named & ids:
            continue
        seen.add(raw)
        ids |= named
        messages.append(Hostile(raw, f"h{len(messages):04d}-{rng.getrandbits(32):08x}", meta))
    return messages[:count]


def _command_id_in(raw: bytes) -> str | None:
    """The ``command_id`` a body names, if it is a JSON object that names one as text."""
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    found = document.get("command_id") if isinstance(document, dict) else None
    return found if isinstance(found, str) else None


def frame_properties(reply_to: str) -> dict[str, bytes]:
    """AMQP content-header properties that RabbitMQ passes on but py-amqp's own decoding refuses; the last
    two carry the reply address (``reply_to``) as a property, where it must be read from."""

    def shortstr(value: bytes) -> bytes:
        return bytes([len(value)]) + value

    def table(*items: bytes) -> bytes:
        joined = b"".join(items)
        return struct.pack(">H", 0x2000) + struct.pack(">I", len(joined)) + joined

    nested = b"V"
    for _ in range(3000):
        nested = b"A" + struct.pack(">I", len(nested)) + nested
    return {
        "content_type_not_utf8": struct.pack(">H", 0x8000) + shortstr(b"\xff\xfeapplication/json"),
        "reply_to_not_utf8": struct.pack(">H", 0x0200) + shortstr(b"q\xc3\x28"),
        "header_timestamp_beyond_9999": table(
            shortstr(b"when") + b"T" + struct.pack(">Q", 2**64 - 1)
        ),
        "header_nested_3000_deep": table(shortstr(b"deep") + nested),
        "header_bytes": table(shortstr(b"blob") + b"x" + struct.pack(">I", 3) + b"\x00\x01\xff"),
        # reply_to (0x0200) and a timestamp (0x0040) of the year 584 billion: an integer, answered
        "property_timestamp_beyond_9999": struct.pack(">H", 0x0200 | 0x0040)
        + shortstr(reply_to.encode())
        + struct.pack(">Q", 2**64 - 1),
        # correlation_id (0x0400) that is not UTF-8 beside a good reply_to: refused, and answered
        "property_correlation_id_not_utf8": struct.pack(">H", 0x0400 | 0x0200)
        + shortstr(b"frame-\xff\xfe")
        + shortstr(reply_to.encode()),
    }
