"""The handler contract: what a job runs, and what it is given besides its kwargs."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from f8a_jobs_worker.filters.query import FilterRunner
    from f8a_jobs_worker.flows.backend import FlowBackend
    from f8a_jobs_worker.flows.fanout import FlowDispatcher


@dataclass(frozen=True)
class HandlerContext:
    """Facts about the run a handler executes in; handlers get their collaborators from here."""

    job_id: str
    handler: str
    scheduled_at: datetime | None
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger]  # carries job_id and handler
    filters: FilterRunner | None = None  # $filter queries on the analytics database
    flows: FlowDispatcher | None = None  # flow-run messages to the flow engine


class BaseHandler:
    """Base of every job handler.

    Subclasses implement :meth:`execute` and describe their kwargs with a JSON Schema: ``kwargs_schema`` inline,
    or for built-in handlers a file ``schemas/handlers/<name>.json``. Handlers are instantiated once per run.
    """

    #: JSON Schema (draft 2020-12) of ``execute``'s kwargs; None means the file schemas/handlers/<name>.json.
    kwargs_schema: ClassVar[Mapping[str, Any] | None] = None

    def __init__(self, context: HandlerContext) -> None:
        self.context = context
        self.log = context.logger

    @classmethod
    def problems(
        cls, kwargs: Mapping[str, Any], flows: FlowBackend | None
    ) -> list[tuple[str, str]]:
        """``(kwargs key, message)`` for what the schema cannot see, such as a flow name the configured flow
        backend does not know; checked when a job is created."""
        return []

    def execute(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        """Do the job's work; return a small JSON-able summary for the ``job.executed`` event."""
        raise NotImplementedError
