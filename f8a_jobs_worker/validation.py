"""JSON Schema validation with every violation reported by its JSON path.

Schemas are the files under ``schemas/`` (draft 2020-12); they are loaded once per process and cached.
"""

from __future__ import annotations

import itertools
import json
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.protocols import Validator
from referencing import Registry, Resource

from f8a_jobs_worker import resources
from f8a_jobs_worker.errors import ValidationFailed


@cache
def load_schema(relative_path: str) -> dict[str, Any]:
    """A schema file from ``schemas/``, e.g. ``"handlers/noop.json"``."""
    path = resources.schemas_dir() / relative_path
    with path.open(encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)
    return schema


@cache
def _registry() -> Registry:
    """Every file under ``schemas/`` by its ``$id``, so that ``$ref`` between files resolves offline."""
    found = []
    for path in sorted(resources.schemas_dir().rglob("*.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        found.append((contents["$id"], Resource.from_contents(contents)))
    registry: Registry = Registry().with_resources(found)
    return registry


def validator_for(schema: dict[str, Any]) -> Validator:
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(
        schema, registry=_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


@cache
def file_validator(relative_path: str) -> Validator:
    """A compiled validator for a schema file, e.g. ``"commands/job.create.json"``."""
    return validator_for(load_schema(relative_path))


#: violations listed per reply, and characters per message (jsonschema quotes the offending value in full)
MAX_VIOLATIONS = 20
MAX_MESSAGE = 300


def violations(validator: Validator, instance: Any, root: str = "$") -> list[dict[str, str]]:
    """The first violations as ``{"path": "$.kwargs.flow_name", "message": ...}``, in document order."""
    errors = sorted(
        itertools.islice(validator.iter_errors(instance), 1000),
        key=lambda e: [str(p) for p in e.absolute_path],
    )
    return [
        {"path": root + error.json_path[1:], "message": _shorten(error.message)}
        for error in errors[:MAX_VIOLATIONS]
    ]


def _shorten(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."


def check(validator: Validator, instance: Any, what: str, root: str = "$") -> None:
    """Raise :class:`ValidationFailed` listing every violation, if there is any."""
    found = violations(validator, instance, root)
    if found:
        summary = "; ".join(f"{v['path']}: {v['message']}" for v in found[:3])
        more = f" (and {len(found) - 3} more)" if len(found) > 3 else ""
        raise ValidationFailed(f"invalid {what}: {summary}{more}", found)
