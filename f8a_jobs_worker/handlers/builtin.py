"""Handlers that ship with the worker."""

from __future__ import annotations

from typing import Any

from f8a_jobs_worker.handlers.base import BaseHandler


class NoopHandler(BaseHandler):
    """Does nothing but log: a heartbeat whose ``job.executed`` events show the scheduler is firing."""

    def execute(self, message: str | None = None, **_: Any) -> dict[str, Any]:
        if message:
            self.log.info("%s", message)
        return {"message": message} if message else {}


def _builtins() -> dict[str, type[BaseHandler]]:
    from f8a_jobs_worker.handlers.flow_handlers import FlowScheduling, SelectiveFlowScheduling

    return {
        "noop": NoopHandler,
        "flow_scheduling": FlowScheduling,
        "selective_flow_scheduling": SelectiveFlowScheduling,
    }


BUILTIN_HANDLERS: dict[str, type[BaseHandler]] = _builtins()
