"""SIGTERM and Ctrl-C for long-running commands: the first asks for a graceful stop, a second exits at once."""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType

from f8a_jobs_worker import logs

log = logging.getLogger("f8a_jobs_worker.cli")


def install_signal_handlers() -> threading.Event:
    """An event set by the first SIGTERM or SIGINT; the second one exits the process without waiting."""
    stop = threading.Event()

    def handle(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            log.warning("%s again: exiting now without waiting", name)
            logs.flush()
            logging.shutdown()
            os._exit(128 + signum)
        log.info("%s received: shutting down (send it again to exit at once)", name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop
