"""The handler registry: built-in handlers plus third-party ones from the entry-point group
``f8a_jobs_worker.handlers``.

Jobs name their handler by registered name only; the registry turns the name into a class. No import path or
callable ever comes from a command.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from f8a_jobs_worker.errors import UnknownHandler, ValidationFailed
from f8a_jobs_worker.handlers.base import BaseHandler
from f8a_jobs_worker.handlers.builtin import BUILTIN_HANDLERS
from f8a_jobs_worker.validation import Schema, check, load_schema, validator_for

if TYPE_CHECKING:
    from f8a_jobs_worker.flows.backend import FlowBackend

ENTRY_POINT_GROUP = "f8a_jobs_worker.handlers"

log = logging.getLogger(__name__)


class HandlerRegistry:
    """Registered handler classes and their compiled kwargs validators."""

    def __init__(self, handlers: Mapping[str, type[BaseHandler]] | None = None) -> None:
        self._handlers: dict[str, type[BaseHandler]] = {}
        self._schemas: dict[str, dict[str, Any]] = {}
        self._validators: dict[str, Schema] = {}
        for name, cls in (handlers or {}).items():
            self.register(name, cls)

    @classmethod
    def discover(cls) -> HandlerRegistry:
        """Built-in handlers plus every installed plug-in; a plug-in that fails to load is logged and skipped."""
        registry = cls(BUILTIN_HANDLERS)
        for entry_point in entry_points(group=ENTRY_POINT_GROUP):
            try:
                handler = entry_point.load()
                registry.register(entry_point.name, handler)
            except Exception:
                log.exception(
                    "handler plug-in %s = %s could not be loaded",
                    entry_point.name,
                    entry_point.value,
                )
        return registry

    def register(self, name: str, handler: type[BaseHandler]) -> None:
        """Add ``handler`` under ``name``; its kwargs schema is checked now, not at the first run."""
        if not (isinstance(handler, type) and issubclass(handler, BaseHandler)):
            raise TypeError(f"handler {name!r} must be a BaseHandler subclass, got {handler!r}")
        existing = self._handlers.get(name)
        if existing is not None and existing is not handler:
            raise ValueError(
                f"handler name {name!r} is taken by {existing.__module__}.{existing.__name__}"
            )
        schema = handler.kwargs_schema
        self._schemas[name] = (
            dict(schema) if schema is not None else load_schema(f"handlers/{name}.json")
        )
        self._validators[name] = validator_for(self._schemas[name])
        self._handlers[name] = handler

    def get(self, name: str) -> type[BaseHandler]:
        try:
            return self._handlers[name]
        except KeyError:
            known = ", ".join(sorted(self._handlers)) or "none"
            raise UnknownHandler(f"unknown handler {name!r} (registered: {known})") from None

    def validate_kwargs(self, name: str, kwargs: Any, flows: FlowBackend | None = None) -> None:
        """Raise UnknownHandler or ValidationFailed (paths under ``$.kwargs``); ``flows``: the flow
        backend whose flow and task names the kwargs must name (None: not checked)."""
        handler = self.get(name)
        check(self._validators[name], kwargs, f"kwargs for handler {name!r}", root="$.kwargs")
        problems = handler.problems(kwargs, flows)
        if problems:
            raise ValidationFailed(
                f"kwargs for handler {name!r}: {problems[0][1]}",
                [{"path": f"$.kwargs.{key}", "message": message} for key, message in problems],
            )

    def schema(self, name: str) -> dict[str, Any]:
        self.get(name)
        return self._schemas[name]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._handlers))

    def __contains__(self, name: object) -> bool:
        return name in self._handlers
