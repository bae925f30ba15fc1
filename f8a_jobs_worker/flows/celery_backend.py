"""Flow runs as plain Celery tasks, for pipelines without Selinon: ``send_task(<task>, kwargs=node_args)``.

The task name is the flow name unless ``F8A_JOBS_CELERY_TASK_NAMES`` maps it (``flow=task,...``); the task id
is the run's (dispatch id and position in the fan-out), so a redelivered run is recognisable. Celery workers
are not asked which tasks they have: an unknown task is reported by the Celery worker, not here.
"""

from __future__ import annotations

from typing import Any

from f8a_jobs_worker.errors import Undeliverable
from f8a_jobs_worker.flows.backend import FlowRun


class CeleryBackend:
    name = "celery"

    def __init__(self, task_names: dict[str, str], queue: str | None = None) -> None:
        from celery import Celery

        self.task_names = task_names
        self.queue = queue
        self.app = Celery("f8a_jobs_worker", set_as_current=False)

    def task_name(self, flow_name: str) -> str:
        return self.task_names.get(flow_name, flow_name)

    def problems(
        self,
        flow_name: str,
        task_names: list[str] | None,
        follow_subflows: bool,
        run_subsequent: bool,
    ) -> list[tuple[str, str]]:
        if task_names is not None:
            return [("task_names", "selective runs need the Selinon flow backend")]
        return []

    def send(self, run: FlowRun, producer: Any) -> None:
        if run.task_names is not None:
            raise Undeliverable(
                "a selective run needs the Selinon flow backend", "selective_unsupported"
            )
        kwargs: dict[str, Any] = dict(run.node_args or {})
        self.app.send_task(
            self.task_name(run.flow_name),
            kwargs=kwargs,
            task_id=run.task_id,
            queue=self.queue,
            producer=producer,
            retry=False,  # the relay retries: a publish must fail on the channel it was counted on
        )
