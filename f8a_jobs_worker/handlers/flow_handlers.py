"""The flow-scheduling handlers: one flow run per flow argument, a ``$filter`` argument expanding to one run per
matching row (re-queried at every run; the stored job is never changed)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from f8a_jobs_worker.handlers.base import BaseHandler

if TYPE_CHECKING:
    from f8a_jobs_worker.flows.backend import FlowBackend


class FlowHandler(BaseHandler):
    """What both flow handlers share: expanding flow arguments and dispatching one message per run."""

    def _dispatch(
        self, flow_name: str, flow_arguments: list[Any], extra: dict[str, Any]
    ) -> dict[str, Any]:
        if self.context.flows is None:
            raise RuntimeError("no broker is configured for flow dispatch")
        dispatch_id = str(uuid.uuid4())
        runs = (
            (flow_name, self._message(flow_name, node_args, dispatch_id, index, extra))
            for index, node_args in enumerate(self._node_args(flow_arguments))
        )
        dispatched = self.context.flows.dispatch(runs)
        self.log.info(
            "dispatched %d %s flow runs (dispatch %s)", dispatched, flow_name, dispatch_id
        )
        return {"flow_name": flow_name, "dispatched": dispatched, "dispatch_id": dispatch_id}

    def _node_args(self, flow_arguments: list[Any]) -> Iterator[Any]:
        for index, argument in enumerate(flow_arguments):
            if isinstance(argument, dict) and "$filter" in argument:
                if self.context.filters is None:
                    raise RuntimeError("no analytics database is configured for $filter queries")
                siblings = {k: v for k, v in argument.items() if k != "$filter"}
                path = f"$.kwargs.flow_arguments[{index}].$filter"
                for row in self.context.filters.rows(argument["$filter"], path):
                    yield {**row, **siblings}
            else:
                yield argument

    def _message(
        self, flow_name: str, node_args: Any, dispatch_id: str, index: int, extra: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "flow_name": flow_name,
            "node_args": node_args,
            "job_id": self.context.job_id,
            "dispatch_id": dispatch_id,
            "run_index": index,
            **extra,
        }


class FlowScheduling(FlowHandler):
    """Run ``flow_name`` once per flow argument: literal node arguments (also null), or
    ``{"$filter": query, ...siblings}``, which becomes one run per row with the siblings merged in."""

    @classmethod
    def problems(
        cls, kwargs: Mapping[str, Any], flows: FlowBackend | None
    ) -> list[tuple[str, str]]:
        if flows is None:
            return []
        return flows.problems(kwargs["flow_name"], None, True, False)

    def execute(
        self, flow_name: str, flow_arguments: list[Any] | None = None, **_: Any
    ) -> dict[str, Any]:
        return self._dispatch(flow_name, flow_arguments or [None], {})


class SelectiveFlowScheduling(FlowHandler):
    """Like flow_scheduling, running only ``task_names`` of the flow (and what follows, with
    ``run_subsequent``)."""

    @classmethod
    def problems(
        cls, kwargs: Mapping[str, Any], flows: FlowBackend | None
    ) -> list[tuple[str, str]]:
        if flows is None:
            return []
        return flows.problems(
            kwargs["flow_name"],
            list(kwargs.get("task_names") or []),
            bool(kwargs.get("follow_subflows", True)),
            bool(kwargs.get("run_subsequent", False)),
        )

    def execute(
        self,
        flow_name: str,
        task_names: list[str] | None = None,
        flow_arguments: list[Any] | None = None,
        run_subsequent: bool = False,
        follow_subflows: bool = True,
        **_: Any,
    ) -> dict[str, Any]:
        extra = {
            "task_names": list(task_names or []),
            "run_subsequent": run_subsequent,
            "follow_subflows": follow_subflows,
        }
        return self._dispatch(flow_name, flow_arguments or [None], extra)
