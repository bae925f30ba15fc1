"""The tasks of the tests' Selinon and Celery applications: each inserts one row saying what it received."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import psycopg
from selinon import SelinonTask

_local = threading.local()

TABLE = "executed"


def _connection() -> psycopg.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = psycopg.connect(os.environ["F8A_TEST_RECORD_DSN"], autocommit=True)
        _local.conn = conn
    return conn


def record(
    task_name: str, flow_name: str | None, task_id: str, dispatcher_id: str | None, args: Any
) -> None:
    _connection().execute(
        f"INSERT INTO {TABLE} (task_name, flow_name, task_id, dispatcher_id, args)"
        " VALUES (%s, %s, %s, %s, %s)",
        (task_name, flow_name, task_id, dispatcher_id, json.dumps(args)),
    )


class RecordTask(SelinonTask):
    """Every Selinon task of the test flows."""

    def run(self, node_args: Any) -> dict[str, str]:
        record(self.task_name, self.flow_name, self.task_id, self.dispatcher_id, node_args)
        return {"recorded": self.task_name}
