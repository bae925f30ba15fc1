"""Flow backends: who executes the flow runs that ``flow_scheduling`` jobs publish.

The worker always publishes neutral flow-run messages (docs/messages.md, "Flow dispatch") to ``f8a_jobs_flows``.
With the default backend, ``exchange``, that is the end of it: a flow engine of the pipeline's own consumes
them. With ``selinon`` or ``celery``, the flow relay (:mod:`f8a_jobs_worker.relays.flow_relay`) reads them from a
durable queue and turns each into a Celery task message on the pipeline's Celery broker, so Selinon or Celery
workers execute them unchanged. A backend also checks a job's flow and task names when the job is created.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from f8a_jobs_worker.errors import Undeliverable


@dataclass(frozen=True)
class FlowRun:
    """One neutral flow-run message, as the relay reads it."""

    flow_name: str
    node_args: dict[str, Any] | None
    job_id: str
    dispatch_id: str
    run_index: int | None = None
    task_names: tuple[str, ...] | None = None  # a selective run
    run_subsequent: bool = False
    follow_subflows: bool = True

    @property
    def task_id(self) -> str:
        """The Celery task id of this run: the same on every delivery of the message, so a duplicate after
        a redelivery is recognisable, and beginning with the dispatch it belongs to."""
        if self.run_index is None:
            return self.dispatch_id
        return f"{self.dispatch_id}.{self.run_index}"

    @classmethod
    def from_message(cls, body: Any) -> FlowRun:
        """The run in a decoded message body; :class:`Undeliverable` when it is not a flow run."""
        from f8a_jobs_worker.validation import file_validator, violations

        problems = violations(file_validator("flow.json"), body)
        if problems:
            first = problems[0]
            raise Undeliverable(f"not a flow run: {first['path']}: {first['message']}")
        selective = "task_names" in body
        return cls(
            flow_name=body["flow_name"],
            node_args=body["node_args"],
            job_id=body["job_id"],
            dispatch_id=body["dispatch_id"],
            run_index=body.get("run_index"),
            task_names=tuple(body["task_names"]) if selective else None,
            run_subsequent=bool(body.get("run_subsequent", False)),
            follow_subflows=bool(body.get("follow_subflows", True)),
        )


class FlowBackend(Protocol):
    """What the relay and ``job.create`` need of a flow engine."""

    name: str

    def problems(
        self,
        flow_name: str,
        task_names: list[str] | None,
        follow_subflows: bool,
        run_subsequent: bool,
    ) -> list[tuple[str, str]]:
        """``(kwargs key, message)`` for each name the flow engine does not know; empty when it can run."""
        ...

    def send(self, run: FlowRun, producer: Any) -> None:
        """Publish ``run`` as the engine's task message through ``producer`` (a kombu producer, which
        Celery's publishing takes) without waiting for the broker; :class:`Undeliverable` for a run that can
        never be sent."""
        ...
