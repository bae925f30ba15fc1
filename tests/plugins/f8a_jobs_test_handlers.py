"""A third-party handler package, as the test suite installs it (see the .dist-info beside this file)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from f8a_jobs_worker.handlers import BaseHandler


def _append(path: str, record: dict[str, Any]) -> None:
    with Path(path).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def _scheduled_at(handler: BaseHandler) -> str | None:
    at = handler.context.scheduled_at
    return at.isoformat() if at else None


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
                "scheduled_at": _scheduled_at(self),
                "pid": os.getpid(),
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
            _append(
                path,
                {
                    "job_id": self.context.job_id,
                    "slept": seconds,
                    "at": time.time(),
                    "scheduled_at": _scheduled_at(self),
                    "pid": os.getpid(),
                },
            )
        return {"slept": seconds}
