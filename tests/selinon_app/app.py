"""The Celery application of the tests' Selinon and plain Celery workers (``celery -A tests.selinon_app.app``).

Environment: F8A_TEST_CELERY_BROKER (the Celery broker), F8A_TEST_RESULT_BACKEND (Selinon's dispatchers
read task states from it), F8A_TEST_QUEUE (the queue prefix of the test), F8A_TEST_RECORD_DSN (where tasks
record what they received).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from celery import Celery
from selinon import Config

from tests.selinon_app.tasks import record

HERE = Path(__file__).parent
NODES = HERE / "nodes.yml"
FLOWS = HERE / "flows"

app = Celery(
    "selinon_app",
    broker=os.environ["F8A_TEST_CELERY_BROKER"],
    backend=os.environ["F8A_TEST_RESULT_BACKEND"],
)
app.conf.update(
    task_default_queue=f"{os.environ['F8A_TEST_QUEUE']}_plain",
    worker_prefetch_multiplier=16,
    broker_connection_retry_on_startup=True,
    result_extended=False,
)
Config.set_celery_app(app)
Config.set_config_yaml(str(NODES), [str(p) for p in sorted(FLOWS.glob("*.yml"))])


@app.task(name="pipeline.record", ignore_result=True)
def record_plain(**kwargs: Any) -> None:
    """The plain Celery backend's task: records its kwargs."""
    from celery import current_task

    record("pipeline.record", None, current_task.request.id, None, kwargs)
