"""The handler registry: built-ins, entry-point plug-ins, kwargs schemas."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from f8a_jobs_worker.errors import UnknownHandler, ValidationFailed
from f8a_jobs_worker.handlers import BaseHandler, HandlerRegistry


def test_builtin_and_entry_point_handlers_are_found() -> None:
    registry = HandlerRegistry.discover()
    assert {"noop", "record", "fail", "sleep"} <= set(registry)
    from f8a_jobs_test_handlers import RecordHandler

    assert registry.get("record") is RecordHandler


def test_unknown_handler_lists_the_known_ones() -> None:
    with pytest.raises(UnknownHandler) as caught:
        HandlerRegistry.discover().get("teleport")
    assert caught.value.code == "unknown_handler"
    assert "noop" in caught.value.message


def test_kwargs_are_checked_against_the_handler_schema() -> None:
    registry = HandlerRegistry.discover()
    registry.validate_kwargs("record", {"path": "/tmp/x"})
    with pytest.raises(ValidationFailed) as caught:
        registry.validate_kwargs("record", {"value": 1, "colour": "red"})
    assert {d["path"] for d in caught.value.details} == {"$.kwargs"}
    messages = " ".join(d["message"] for d in caught.value.details)
    assert "'path' is a required property" in messages
    assert "'colour' was unexpected" in messages
    with pytest.raises(ValidationFailed) as nested:
        registry.validate_kwargs("sleep", {"seconds": -1})
    assert nested.value.details[0]["path"] == "$.kwargs.seconds"


def test_builtin_schemas_are_files_under_schemas_handlers() -> None:
    schema = HandlerRegistry.discover().schema("noop")
    assert schema["$id"].endswith("schemas/handlers/noop.json")
    assert (Path(__file__).parents[1] / "schemas" / "handlers" / "noop.json").is_file()


def test_a_broken_plug_in_is_skipped_and_logged(tmp_path: Path, monkeypatch, caplog) -> None:
    dist = tmp_path / "broken_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[f8a_jobs_worker.handlers]\nbroken = no_such_module:Handler\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with caplog.at_level(logging.ERROR):
        registry = HandlerRegistry.discover()
    assert "broken" not in registry
    assert "noop" in registry
    assert "handler plug-in broken = no_such_module:Handler could not be loaded" in caplog.text


def test_only_base_handler_subclasses_register() -> None:
    registry = HandlerRegistry()
    with pytest.raises(TypeError):
        registry.register("bad", object)  # type: ignore[arg-type]

    class Inline(BaseHandler):
        kwargs_schema = {"type": "object", "properties": {"n": {"type": "integer"}}}

    registry.register("inline", Inline)
    with pytest.raises(ValueError, match="taken"):
        registry.register("inline", type("Other", (Inline,), {}))
    with pytest.raises(ValidationFailed):
        registry.validate_kwargs("inline", {"n": "x"})
