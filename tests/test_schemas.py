"""The schema files themselves: valid draft 2020-12, one per command, result and event, and the AsyncAPI
document pointing only at files that exist."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from jsonschema import Draft7Validator, Draft202012Validator

from f8a_jobs_worker.commands.applier import COMMANDS
from f8a_jobs_worker.commands.envelope import problems
from f8a_jobs_worker.events import model as events
from f8a_jobs_worker.handlers.builtin import BUILTIN_HANDLERS
from f8a_jobs_worker.validation import file_validator, violations
from tests import hostile

SCHEMAS = Path(__file__).parents[1] / "schemas"


def test_every_schema_file_is_valid_and_has_an_id() -> None:
    files = sorted(SCHEMAS.rglob("*.json"))
    assert len(files) > 30
    ids = set()
    for path in files:
        schema = json.loads(path.read_text())
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema", path
        assert schema["$id"].endswith("schemas/" + path.relative_to(SCHEMAS).as_posix()), path
        ids.add(schema["$id"])
    assert len(ids) == len(files)


def test_one_args_and_one_result_schema_per_command() -> None:
    for command in COMMANDS:
        assert (SCHEMAS / "commands" / f"{command}.json").is_file(), command
        assert (SCHEMAS / "results" / f"{command}.json").is_file(), command
    assert {p.stem for p in (SCHEMAS / "commands").glob("*.json")} == set(COMMANDS)


def test_one_schema_per_event() -> None:
    names = {v for k, v in vars(events).items() if k.isupper() and isinstance(v, str)}
    assert {p.stem for p in (SCHEMAS / "events").glob("*.json")} == names


def test_job_create_references_every_builtin_handler_schema() -> None:
    create = json.loads((SCHEMAS / "commands" / "job.create.json").read_text())
    referenced = {branch["if"]["properties"]["handler"]["const"] for branch in create["allOf"]}
    assert referenced == set(BUILTIN_HANDLERS)


def test_asyncapi_points_at_existing_files() -> None:
    document = yaml.safe_load((SCHEMAS / "asyncapi.yaml").read_text())
    assert document["asyncapi"].startswith("3.")
    refs: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str) and value.startswith("./"):
                    refs.append(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(document)
    assert refs
    for ref in refs:
        assert (SCHEMAS / ref).is_file(), ref


#: keywords of draft 2020-12 that draft-07 lacks or reads otherwise (the AsyncAPI document declares the
#: payloads as draft-07, the version AsyncAPI tools check them with)
NOT_IN_DRAFT_07 = {
    "$defs",
    "$anchor",
    "$dynamicRef",
    "$dynamicAnchor",
    "$vocabulary",
    "prefixItems",
    "unevaluatedProperties",
    "unevaluatedItems",
    "dependentRequired",
    "dependentSchemas",
    "minContains",
    "maxContains",
}


def test_schemas_stay_in_the_subset_draft_07_reads_the_same() -> None:
    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            found = NOT_IN_DRAFT_07 & set(node)
            assert not found, f"{where}: {found}"
            assert not isinstance(node.get("items"), list), f"{where}: tuple items"
            for key, value in node.items():
                if key not in {"properties", "patternProperties"}:
                    walk(value, f"{where}/{key}")
                elif isinstance(value, dict):
                    for name, sub in value.items():
                        walk(sub, f"{where}/{key}/{name}")
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, f"{where}/{index}")

    for path in sorted(SCHEMAS.rglob("*.json")):
        schema = json.loads(path.read_text())
        walk(schema, path.name)
        Draft7Validator.check_schema({k: v for k, v in schema.items() if k != "$schema"})


@settings(max_examples=1500, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(hostile.envelope())
def test_the_fast_validator_never_accepts_what_the_reference_refuses(document: object) -> None:
    """validation.py lets jsonschema_rs say yes to valid input: it must agree with jsonschema, the
    reference whose errors replies list, on every command's envelope and arguments, odd values included."""
    if problems(document):  # refused before any schema sees it (depth, NUL, huge numbers)
        return
    envelope = file_validator("envelope.json")
    fast, reference = envelope.valid_at_once(document), envelope.reference.is_valid(document)
    assert fast == reference, document
    if not reference or not isinstance(document, dict) or document["command"] not in COMMANDS:
        return
    args = document.get("args") or {}
    schema = file_validator(f"commands/{document['command']}.json")
    assert schema.valid_at_once(args) == schema.reference.is_valid(args), args


VALID_ARGS = {
    "job.create": {
        "handler": "flow_scheduling",
        "job_id": "nightly",
        "cron": "0 3 * * *",
        "kwargs": {"flow_name": "bayesianFlow", "flow_arguments": [{"ecosystem": "npm"}]},
        "misfire_grace_time": None,
        "overlap": "allow",
        "overlap_limit": 3,
    },
    "job.backfill": {
        "job_id": "nightly",
        "start": "2026-01-01T00:00:00+00:00",
        "end": "2026-01-02T00:00:00Z",
        "concurrency": 2,
    },
    "job.list": {"job_type": "failed", "limit": 10, "after": "a"},
    "job.get": {"job_id": "nightly"},
}
INVALID_ARGS = {
    "job.create": [{"handler": 3}, {"handler": "noop", "job_id": ""}, {"handler": "noop", "x": 1}],
    "job.backfill": [{"job_id": "a", "start": 5, "end": "2026-01-02T00:00:00Z"}],
    "job.list": [{"limit": -1}, {"after": 1}],
    "job.get": [{}, {"job_id": None}],
}


def test_the_fast_validator_agrees_on_chosen_cases() -> None:
    for command, args in VALID_ARGS.items():
        compiled = file_validator(f"commands/{command}.json")
        assert compiled.valid_at_once(args) and compiled.reference.is_valid(args), args
    for command, cases in INVALID_ARGS.items():
        compiled = file_validator(f"commands/{command}.json")
        for args in cases:
            assert not compiled.valid_at_once(args), args
            assert not compiled.reference.is_valid(args), args
    found = violations(file_validator("commands/job.create.json"), {"handler": 3})
    assert found[0]["path"] == "$.handler"
