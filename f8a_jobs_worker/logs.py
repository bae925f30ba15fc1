"""Log set-up for the command line: one short line per event, UTC timestamps, level and logger name; or, with
``F8A_JOBS_LOG_FORMAT=json``, one JSON object per line (python-json-logger) whose fields include the
``job_id``, ``handler``, ``command_id`` and ``command`` of lines about a job or a command.

Call sites pass those ids with ``extra=job_fields(...)`` / ``extra=command_fields(...)``: in text they are
already in the message, in JSON they are fields a log pipeline can filter on.
"""

from __future__ import annotations

import atexit
import collections
import logging
import sys
import threading
import time
from logging.handlers import QueueHandler
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

FORMATS = ("text", "json")

#: how long a worker's line may wait for the lines after it, to be written with them
WRITE_EVERY = 0.05


class _Writer:
    """The thread that writes a worker's lines: it wakes every ``WRITE_EVERY`` seconds and writes what the
    other threads queued meanwhile in one write. A line queued wakes nobody, so a busy thread hands its line
    over without a switch to this thread (two of the six a running create cost, when each line woke it)."""

    def __init__(self, handler: logging.Handler, stream: TextIO) -> None:
        self._records: collections.deque[logging.LogRecord] = collections.deque()
        self._handler, self._stream = handler, stream
        #: lines in order when another thread flushes (reentrant: a signal handler may flush mid-write)
        self._writing = threading.RLock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="f8a-logs", daemon=True)
        self._thread.start()

    def put_nowait(self, record: logging.LogRecord) -> None:
        """``QueueHandler``'s queue: ``deque.append`` is atomic and notifies no one."""
        self._records.append(record)

    def stop(self) -> None:
        """Write every line still queued, and end the thread."""
        self._stopped.set()
        self._thread.join()
        self.flush()

    def flush(self) -> None:
        """Write the lines queued, in one write."""
        with self._writing:
            self._write_queued()

    def _run(self) -> None:
        while not self._stopped.wait(WRITE_EVERY):
            self.flush()

    def _write_queued(self) -> None:
        lines = []
        while self._records:
            record = self._records.popleft()
            try:
                lines.append(self._handler.format(record) + "\n")
            except Exception:
                self._handler.handleError(record)
        if lines:
            try:
                self._stream.write("".join(lines))
                self._stream.flush()
            except Exception:
                self._handler.handleError(record)


#: the thread writing the lines of a worker (``configure(background=True)``)
_listener: _Writer | None = None


@atexit.register
def _write_the_rest() -> None:
    if _listener is not None:
        _listener.stop()


DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def job_fields(job_id: str, handler: str | None = None) -> dict[str, str]:
    """``extra=`` of a log line about a job."""
    return {"job_id": job_id} if handler is None else {"job_id": job_id, "handler": handler}


def command_fields(command_id: str, command: str | None) -> dict[str, str]:
    """``extra=`` of a log line about a command."""
    return {"command_id": command_id, "command": command or ""}


def flush() -> None:
    """Write the lines queued for the writing thread now (before the process exits without ``atexit``)."""
    if _listener is not None:
        _listener.flush()


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


class _HandOver(QueueHandler):
    """Hands a record to the writing thread as it is: its message merged with its arguments now (they may
    change later), its exception kept for the formatter there (a JSON line keeps ``exc_info`` a field)."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record.msg, record.args = record.getMessage(), None
        return record


def configure(level: str = "INFO", fmt: str = "text", background: bool = False) -> None:
    """Log to stderr. ``background`` (the worker): threads hand their records to one writing thread
    instead of taking turns at the stream's lock and writing it themselves; under load each write let go of
    the GIL, and taking it back cost a busy thread (the command consumer, a runner) more than the line. Lines
    still queued at exit are written before the process ends."""
    handler: logging.Handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    global _listener
    if _listener is not None:
        _listener.stop()
        _listener = None
    if background:
        _listener = _Writer(handler, sys.stderr)
        handler = _HandOver(_listener)  # type: ignore[arg-type]  # a queue in all QueueHandler uses
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # APScheduler logs every wake-up and submission at INFO; the worker logs the outcomes itself.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))
