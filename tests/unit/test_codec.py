"""The JSON the worker sends: orjson's bytes are the standard library's compact JSON for the documents the
worker sends, and what orjson refuses is written, or refused, as the standard library does."""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from f8a_jobs_worker.messaging import codec

STDLIB = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)

SCALARS = (
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1) | st.text()
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=25,
)


@given(DOCUMENTS)
def test_documents_are_the_standard_librarys_compact_json_byte_for_byte(document: Any) -> None:
    assert codec.dumps(document) == STDLIB.encode(document).encode("utf-8")
    assert codec.dumps_text(document) == STDLIB.encode(document)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_float_reads_back_as_the_same_float(number: float) -> None:
    assert json.loads(codec.dumps({"x": number})) == {"x": number}


class Colour(StrEnum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int


@pytest.mark.parametrize(
    "document",
    [
        {"big": 2**70, "small": -(2**70)},  # beyond 64 bits
        {1: "a", None: "b", 2.5: "c"},  # keys that are not strings
        {"colour": Colour.RED, "items": [Colour.RED]},  # a subclass of str
    ],
)
def test_what_orjson_refuses_is_written_as_the_standard_library_writes_it(document: Any) -> None:
    assert codec.dumps(document) == STDLIB.encode(document).encode("utf-8")


@pytest.mark.parametrize(
    ("document", "error"),
    [
        ({"text": "\ud800"}, UnicodeEncodeError),  # not valid Unicode
        ({"at": datetime(2026, 1, 1, tzinfo=UTC)}, TypeError),
        ({"point": Point(1)}, TypeError),
    ],
)
def test_what_the_standard_library_refuses_is_still_refused(document: Any, error: type) -> None:
    with pytest.raises(error):
        codec.dumps(document)


def test_a_reply_that_cannot_be_encoded_becomes_an_internal_error_that_can() -> None:
    reply = json.loads(
        codec.encode_reply({"command_id": "c\ud800", "command": "job.get", "ok": True})
    )
    assert reply["ok"] is False and reply["error"]["code"] == "internal_error"
    assert reply["command_id"] == "c\\ud800"


def test_numbers_json_has_no_word_for_are_written_null() -> None:
    sent = json.loads(codec.dumps({"nan": math.nan, "inf": math.inf, "minus": -math.inf}))
    assert sent == {"nan": None, "inf": None, "minus": None}
