"""The embedded transport: kombu's filesystem transport with atomic writes.

kombu's own ``_put`` writes the message file in place while readers may already pick it up half-written, and
names files by a per-process monotonic clock. Here a message is written under a temporary name and renamed into
the queue folder in one step, and named by wall-clock time so files from several processes keep their order.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from kombu import Connection
from kombu.transport import filesystem
from kombu.utils.json import dumps

from f8a_jobs_worker.messaging.inbound import VirtualMessage, queue_name_problem


class Channel(filesystem.Channel):  # type: ignore[misc]
    Message = VirtualMessage

    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        name = f"{time.time_ns():020d}_{uuid.uuid4().hex}.{queue}.msg"
        staging = Path(self.data_folder_out) / ".staging"
        staging.mkdir(parents=True, exist_ok=True)
        temporary = staging / name
        temporary.write_bytes(dumps(payload).encode("utf-8"))
        temporary.replace(Path(self.data_folder_out) / name)


class Transport(filesystem.Transport):  # type: ignore[misc]
    Channel = Channel
    driver_type = "filesystem"
    driver_name = "f8a-embedded"
    #: how long the consumer may hold a delivery while the job store is down, before requeueing it
    max_hold = 300.0
    #: reply queues are file name parts here: no path separators
    reply_to_problem = staticmethod(queue_name_problem)


def connect(url: str, heartbeat: int = 0) -> Connection:
    """``filesystem:///path``: the folder is made if missing (``filesystem://`` alone: ./f8a-jobs-broker)."""
    folder = Path(unquote(urlsplit(url).path) or "f8a-jobs-broker")
    folder.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "polling_interval": 0.05,
    }
    return Connection(transport=Transport, hostname="localhost", transport_options=options)
