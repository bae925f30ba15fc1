"""A third-party handler package, as the test suite installs it (see the .dist-info beside this file)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from f8a_jobs_worker.handlers import BaseHandler


def _append(path: str, record: dict[str, Any]) -> None:
    with Path(path).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


class RecordHandler(BaseHandler):
    """Appends one JSON line per run to ``path``: proof, readable from another process, that it ran."""

    kwargs_schema = {
        "type": "object",
        "properties": {"path": {"type": "string"}, "value": {}},
        "required": ["path"],
        "additionalProperties": False,
    }

    def execute(self, path: str, value: Any = None) -> dict[str, Any]:
        _append(
            path,
            {
                "job_id": self.context.job_id,
                "value": value,
                "at": time.time(),
                "scheduled_at": self.context.scheduled_at.isoformat()
                if self.context.scheduled_at
                else None,
            },
        )
        return {"written": value}


class FailHandler(BaseHandler):
    kwargs_schema = {
        "type": "object",
        "properties": {"message": {"type": "string"}},
        "additionalProperties": False,
    }

    def execute(self, message: str = "boom") -> dict[str, Any]:
        raise RuntimeError(message)


class SleepHandler(BaseHandler):
    kwargs_schema = {
        "type": "object",
        "properties": {"seconds": {"type": "number", "minimum": 0}, "path": {"type": "string"}},
        "required": ["seconds"],
        "additionalProperties": False,
    }

    def execute(self, seconds: float, path: str | None = None) -> dict[str, Any]:
        time.sleep(seconds)
        if path:
            _append(path, {"job_id": self.context.job_id, "slept": seconds, "at": time.time()})
        return {"slept": seconds}
