"""Log set-up for the command line: one short line per event, UTC timestamps, level and logger name."""

from __future__ import annotations

import logging
import sys
import time


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    formatter = logging.Formatter(
        "%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%SZ"
    )
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # APScheduler logs every wake-up and submission at INFO; the worker logs the outcomes itself.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))
