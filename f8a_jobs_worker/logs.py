"""Log set-up for the command line: one short line per event, UTC timestamps, level and logger name; or, with
``F8A_JOBS_LOG_FORMAT=json``, one JSON object per line (python-json-logger) whose fields include the
``job_id``, ``handler``, ``command_id`` and ``command`` of lines about a job or a command.

Call sites pass those ids with ``extra=job_fields(...)`` / ``extra=command_fields(...)``: in text they are
already in the message, in JSON they are fields a log pipeline can filter on.
"""

from __future__ import annotations

import logging
import sys
import time

from pythonjsonlogger.json import JsonFormatter

FORMATS = ("text", "json")
DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def job_fields(job_id: str, handler: str | None = None) -> dict[str, str]:
    """``extra=`` of a log line about a job."""
    return {"job_id": job_id} if handler is None else {"job_id": job_id, "handler": handler}


def command_fields(command_id: str, command: str | None) -> dict[str, str]:
    """``extra=`` of a log line about a command."""
    return {"command_id": command_id, "command": command or ""}


def formatter(fmt: str = "text") -> logging.Formatter:
    made: logging.Formatter
    if fmt == "json":
        made = JsonFormatter(
            "{asctime}{levelname}{name}{message}",
            style="{",
            datefmt=DATE_FORMAT,
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    else:
        made = logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", DATE_FORMAT)
    made.converter = time.gmtime
    return made


def configure(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # APScheduler logs every wake-up and submission at INFO; the worker logs the outcomes itself.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))
