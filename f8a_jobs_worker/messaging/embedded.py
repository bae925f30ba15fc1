"""The embedded transport: kombu's filesystem transport with atomic writes and acknowledgements that hold.

kombu's own ``_put`` writes the message file in place while readers may already pick it up half-written, and
names files by a per-process monotonic clock. Here a message is written under a temporary name and renamed into
the queue folder in one step, and named by wall-clock time so files from several processes keep their order.

kombu's ``_get`` deletes a message's file when it delivers it, so a process killed before acknowledging loses
it. Here delivery moves the file into an in-flight folder of the channel's own (``.inflight/<owner>/``, its
owner holding a lock file); the acknowledgement deletes it, a rejection deletes it after kombu has put a copy
back, and closing the channel moves what is still in flight back to its queue under its own name (its place in
the order). The in-flight folders of owners that are gone (the lock is free: ``kill -9``) are moved back by
the next channel opened on the folder.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from queue import Empty
from typing import Any
from urllib.parse import unquote, urlsplit

from filelock import FileLock, Timeout
from kombu import Connection
from kombu.transport import filesystem
from kombu.utils.json import dumps, loads

from f8a_jobs_worker.messaging.inbound import VirtualMessage, queue_name_problem
from f8a_jobs_worker.messaging.topology import QueueTopology

INFLIGHT = ".inflight"


class Channel(filesystem.Channel):  # type: ignore[misc]
    Message = VirtualMessage
    #: kombu would put unacknowledged messages back as copies at the end of the queue; they go back from
    #: the in-flight folder instead, under their own names
    do_restore = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._folder = Path(self.data_folder_in)
        inflight = self._folder / INFLIGHT
        inflight.mkdir(parents=True, exist_ok=True)
        _recover_orphans(self._folder)
        self._own = inflight / f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._own_lock = FileLock(f"{self._own}.lock")
        self._own_lock.acquire()
        self._own.mkdir()
        self._taken: dict[str, Path] = {}
        self._auto_ack: set[str] = set()

    def _get(self, queue: str) -> Any:
        """The oldest message of ``queue``, moved into this channel's in-flight folder (or deleted, for a
        consumer that does not acknowledge)."""
        wanted = f"{queue}.msg"
        for name in sorted(entry.name for entry in self._folder.iterdir()):
            if name.partition(".")[2] != wanted:
                continue
            taken = self._own / name
            try:
                (self._folder / name).rename(taken)
            except OSError:  # another consumer took it first
                continue
            payload = loads(taken.read_bytes())
            if queue in self._auto_ack:
                taken.unlink()
            else:
                self._taken[str(payload["properties"]["delivery_tag"])] = taken
            return payload
        raise Empty()

    def basic_consume(self, queue: str, no_ack: bool, *args: Any, **kwargs: Any) -> Any:
        if no_ack:
            self._auto_ack.add(queue)
        return super().basic_consume(queue, no_ack, *args, **kwargs)

    def basic_get(self, queue: str, no_ack: bool = False, **kwargs: Any) -> Any:
        message = super().basic_get(queue, no_ack=no_ack, **kwargs)
        if message is not None and no_ack:
            self._settle(message.delivery_tag)
        return message

    def basic_ack(self, delivery_tag: Any, multiple: bool = False) -> None:
        super().basic_ack(delivery_tag, multiple)
        self._settle(delivery_tag)

    def basic_reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        super().basic_reject(delivery_tag, requeue)  # with requeue, kombu has put a copy back
        self._settle(delivery_tag)

    def _settle(self, delivery_tag: Any) -> None:
        taken = self._taken.pop(str(delivery_tag), None)
        if taken is not None:
            with contextlib.suppress(FileNotFoundError):
                taken.unlink()

    def close(self) -> None:
        if not self.closed:
            _put_back(self._taken.values(), self._folder)
            self._taken.clear()
            with contextlib.suppress(OSError):
                self._own.rmdir()
            self._own_lock.release()
            with contextlib.suppress(OSError):
                Path(self._own_lock.lock_file).unlink()
        super().close()

    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        name = f"{time.time_ns():020d}_{uuid.uuid4().hex}.{queue}.msg"
        staging = Path(self.data_folder_out) / ".staging"
        staging.mkdir(parents=True, exist_ok=True)
        temporary = staging / name
        temporary.write_bytes(dumps(payload).encode("utf-8"))
        temporary.replace(Path(self.data_folder_out) / name)


def _put_back(taken: Iterable[Path], folder: Path) -> None:
    """Messages taken and not acknowledged: back to their queue under their own names (their place)."""
    for path in list(taken):
        with contextlib.suppress(FileNotFoundError):
            path.rename(folder / path.name)


def _recover_orphans(folder: Path) -> None:
    """Move the in-flight messages of channels whose owner is gone back to their queues."""
    for owner in (folder / INFLIGHT).iterdir():
        if not owner.is_dir():
            continue
        lock = FileLock(f"{owner}.lock", timeout=0)
        try:
            lock.acquire()
        except Timeout:
            continue  # its owner is alive
        try:
            _put_back(owner.iterdir(), folder)
            with contextlib.suppress(OSError):
                owner.rmdir()
        finally:
            lock.release()


class Transport(filesystem.Transport):  # type: ignore[misc]
    Channel = Channel
    driver_type = "filesystem"
    driver_name = "f8a-embedded"
    #: how long the consumer may hold a delivery while the job store is down, before requeueing it
    max_hold = 300.0
    #: reply queues are file name parts here: no path separators
    reply_to_problem = staticmethod(queue_name_problem)
    topology = QueueTopology()


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
