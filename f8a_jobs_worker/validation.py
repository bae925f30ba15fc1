"""JSON Schema validation with every violation reported by its JSON path.

Schemas are the files under ``schemas/`` (draft 2020-12); they are loaded and compiled once per process.
Each is compiled twice: by ``jsonschema_rs`` (Rust, about 200 times faster here) to say yes to a valid
instance, and by ``jsonschema``, the reference, which lists the violations of an instance the first one
refuses (and has the last word: where they disagree, its verdict stands). Valid input, the common case,
costs microseconds; the errors a client sees are ``jsonschema``'s, as the contract documents them.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from functools import cache
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator, ValidationError
from jsonschema.protocols import Validator
from referencing import Registry, Resource

from f8a_jobs_worker import resources
from f8a_jobs_worker.errors import ValidationFailed

#: the contract's version (``scheduler.state``): it grows by additions within a version (docs/messages.md,
#: "How the contract grows"); a field removed or changing meaning makes the next one
CONTRACT_VERSION = "2"


@cache
def load_schema(relative_path: str) -> dict[str, Any]:
    """A schema file from ``schemas/``, e.g. ``"handlers/noop.json"``."""
    path = resources.schemas_dir() / relative_path
    with path.open(encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)
    return schema


@cache
def _files() -> list[tuple[str, dict[str, Any]]]:
    """Every file under ``schemas/`` by its ``$id``, so that ``$ref`` between files resolves offline."""
    found = []
    for path in sorted(resources.schemas_dir().rglob("*.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        found.append((contents["$id"], contents))
    return found


@cache
def _registry() -> Registry:
    registry: Registry = Registry().with_resources(
        (uri, Resource.from_contents(contents)) for uri, contents in _files()
    )
    return registry


@cache
def _fast_registry() -> jsonschema_rs.Registry:
    return jsonschema_rs.Registry(_files())


class Schema:
    """A schema compiled for both validators (see the module's docstring)."""

    def __init__(self, schema: dict[str, Any]) -> None:
        Draft202012Validator.check_schema(schema)
        #: the reference: its violations are the ones replies list
        self.reference: Validator = Draft202012Validator(
            schema, registry=_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER
        )
        self._fast = jsonschema_rs.Draft202012Validator(
            schema, registry=_fast_registry(), validate_formats=True, offline=True
        )

    def valid_at_once(self, instance: Any) -> bool:
        """True when the fast validator accepts ``instance`` (False says only: ask the reference)."""
        try:
            return bool(self._fast.is_valid(instance))
        except Exception:  # a Python value outside JSON's types: the reference decides
            return False

    def iter_errors(self, instance: Any) -> Iterator[ValidationError]:
        """The reference's violations (none for a valid instance)."""
        if self.valid_at_once(instance):
            return iter(())
        return self.reference.iter_errors(instance)


def validator_for(schema: dict[str, Any]) -> Schema:
    return Schema(schema)


@cache
def file_validator(relative_path: str) -> Schema:
    """A compiled validator for a schema file, e.g. ``"commands/job.create.json"``."""
    return Schema(load_schema(relative_path))


#: violations listed per reply, and characters per message (jsonschema quotes the offending value in full)
MAX_VIOLATIONS = 20
MAX_MESSAGE = 300


def violations(validator: Schema, instance: Any, root: str = "$") -> list[dict[str, str]]:
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


def check(validator: Schema, instance: Any, what: str, root: str = "$") -> None:
    """Raise :class:`ValidationFailed` listing every violation, if there is any."""
    found = violations(validator, instance, root)
    if found:
        summary = "; ".join(f"{v['path']}: {v['message']}" for v in found[:3])
        more = f" (and {len(found) - 3} more)" if len(found) > 3 else ""
        raise ValidationFailed(f"invalid {what}: {summary}{more}", found)
