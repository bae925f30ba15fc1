"""The job function of the bare APScheduler comparison, in a module of its own so that the stored reference
(``bench.bare_job:touch``) and the reporting process share one list even when run with ``python -m``."""

from __future__ import annotations

import threading
import time

LATENESS_MS: list[float] = []
_lock = threading.Lock()


def touch(scheduled_ts: float) -> None:
    """Note how late this run started (handler start minus scheduled time)."""
    late = time.time() - scheduled_ts
    with _lock:
        LATENESS_MS.append(late * 1000)
