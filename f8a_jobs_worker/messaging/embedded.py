"""The embedded broker: a folder of message files that the processes of one machine share; queues only.

A message is a file named ``<time>_<uuid>.<queue>.msg`` (wall-clock nanoseconds, so files from several
processes keep their order) holding kombu's JSON envelope of it, as kombu's filesystem transport writes it:
a kombu client pointed at the same folder reads and writes the same queues. It is written under a temporary
name and renamed into the folder in one step, so no reader sees half a message.

A delivered message is moved into an in-flight folder of the connection's own (``.inflight/<owner>/``, the
owner holding a lock file) and deleted when acknowledged; given back (:meth:`Embedded.requeue`, or the
connection closed), it goes back to its queue under its own name, its place in the order. The in-flight
folders of owners that are gone (their lock is free: ``kill -9``) are put back by the next connection opened
on the folder, so a worker killed loses no command.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
import pwd
import socket
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from filelock import FileLock, Timeout

from f8a_jobs_worker.errors import BrokerUnavailable
from f8a_jobs_worker.messaging.inbound import as_bytes, queue_name_problem
from f8a_jobs_worker.messaging.port import PROPERTIES, Delivery, Facts, Outgoing, Transport

DEFAULT_FOLDER = "f8a-jobs-broker"
INFLIGHT = ".inflight"
STAGING = ".staging"
#: how often an empty queue is looked at again while a consumer waits
POLL = 0.05
#: how long a message file that is not JSON may still be a kombu client's unfinished write (seconds)
SETTLING = 2.0


class Embedded(Transport):
    facts = Facts(batches=False, max_hold=300.0, identity="embedded")

    def __init__(self, url: str, heartbeat: int = 0) -> None:
        self.folder = Path(unquote(urlsplit(url).path) or DEFAULT_FOLDER)
        self._own: Path | None = None
        self._lock: FileLock | None = None
        self._consuming: str | None = None
        self._prefetch = 1
        self._taken: dict[str, Path] = {}
        self._private: set[str] = set()

    def connect(self) -> None:
        self.close()
        try:
            (self.folder / INFLIGHT).mkdir(parents=True, exist_ok=True)
            (self.folder / STAGING).mkdir(exist_ok=True)
            _recover_orphans(self.folder)
            own = (
                self.folder
                / INFLIGHT
                / f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            )
            lock = FileLock(f"{own}.lock")
            lock.acquire()
            own.mkdir()
        except OSError as exc:
            raise BrokerUnavailable(f"the embedded broker's folder {self.folder}: {exc}") from exc
        self._own, self._lock = own, lock

    def close(self) -> None:
        own, lock, self._own, self._lock = self._own, self._lock, None, None
        _put_back(self._taken.values(), self.folder)
        self._taken.clear()
        if own is not None:
            with contextlib.suppress(OSError):
                own.rmdir()
        if lock is not None:
            lock.release()
            with contextlib.suppress(OSError):
                Path(lock.lock_file).unlink()

    def _owner(self) -> Path:
        if self._own is None:
            raise BrokerUnavailable("the embedded broker: not connected")
        return self._own

    # -- queues ----------------------------------------------------------------------------------------------

    def declare_queue(self, name: str) -> None:
        """Nothing to do: a queue is the files named for it."""

    def subscribe(self, topic: str, queue: str, binding: str = "#") -> str:
        """No routing: the standing consumer reads the queue named like the topic."""
        return topic

    def private_queue(self, name: str, topic: str = "", binding: str = "#") -> str:
        """A queue of its own (emptied by :meth:`release`); for a topic, the topic's one queue."""
        if topic:
            return topic
        self._private.add(name)
        return name

    def release(self, queue: str) -> None:
        if queue in self._private:
            self._private.discard(queue)
            for path in self._files(queue):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    def reply_to_problem(self, name: str) -> str | None:
        """Reply queues are parts of file names here: no path separators."""
        return queue_name_problem(name)

    # -- receiving -------------------------------------------------------------------------------------------

    def consume(self, queue: str, prefetch: int) -> None:
        self._consuming, self._prefetch = queue, prefetch

    def receive(self, timeout: float, limit: int) -> list[Delivery]:
        if self._consuming is None:
            raise BrokerUnavailable("the embedded broker: nothing consumed")
        room = min(limit, self._prefetch - len(self._taken))
        deadline = time.monotonic() + timeout
        while True:
            found = self._take(self._consuming, room) if room > 0 else []
            if found or time.monotonic() >= deadline:
                return found
            time.sleep(min(POLL, max(deadline - time.monotonic(), 0)))

    def get(self, queue: str, wait: float = 0.0) -> Delivery | None:
        deadline = time.monotonic() + wait
        while True:
            found = self._take(queue, 1)
            if found or time.monotonic() >= deadline:
                return found[0] if found else None
            time.sleep(POLL)

    def _files(self, queue: str) -> list[Path]:
        wanted = f".{queue}.msg"
        return [
            self.folder / name
            for name in sorted(entry.name for entry in os.scandir(self.folder) if entry.is_file())
            if name.endswith(wanted) and name.partition(".")[2] == wanted[1:]
        ]

    def _take(self, queue: str, limit: int) -> list[Delivery]:
        """The oldest messages of ``queue``, moved into this connection's in-flight folder."""
        own, found = self._owner(), []
        for path in self._files(queue):
            taken = own / path.name
            try:
                path.rename(taken)
            except OSError:  # another consumer took it first
                continue
            data = _read_written(taken)
            if data is None:  # a kombu client is still writing it: taken on a later look
                _put_back([taken], self.folder)
                continue
            delivery = _delivery(data)
            delivery.tag = str(taken)
            delivery.sender = _owner(taken)
            self._taken[delivery.tag] = taken
            found.append(delivery)
            if len(found) == limit:
                break
        return found

    def ack(self, deliveries: Iterable[Delivery]) -> None:
        for delivery in deliveries:
            taken = self._taken.pop(delivery.tag, None)
            if taken is not None:
                with contextlib.suppress(FileNotFoundError):
                    taken.unlink()

    def requeue(self, deliveries: Iterable[Delivery]) -> None:
        _put_back([self._taken.pop(d.tag) for d in deliveries if d.tag in self._taken], self.folder)

    # -- sending ---------------------------------------------------------------------------------------------

    def send(self, messages: Iterable[Outgoing], window: int = 0) -> int:
        """Each message written whole before the next (the folder has it once renamed into place)."""
        sent = 0
        for message in messages:
            queue = message.topic or message.queue
            name = f"{time.time_ns():020d}_{uuid.uuid4().hex}.{queue}.msg"
            staging = self.folder / STAGING / name
            try:
                staging.write_bytes(json.dumps(envelope(message)).encode("utf-8"))
                staging.replace(self.folder / name)
            except OSError as exc:
                raise BrokerUnavailable(f"the embedded broker: {exc}", sent) from exc
            sent += 1
        return sent


def envelope(message: Outgoing) -> dict[str, Any]:
    """kombu's envelope of a message, as its filesystem transport keeps it in a file."""
    properties: dict[str, Any] = {
        "body_encoding": "base64",
        "delivery_info": {"exchange": message.topic, "routing_key": message.routing_key},
        "delivery_mode": 2,
        "delivery_tag": str(uuid.uuid4()),
        "priority": 0,
    }
    for name in ("reply_to", "message_id", "correlation_id"):
        if getattr(message, name):
            properties[name] = getattr(message, name)
    return {
        "body": base64.b64encode(message.body).decode("ascii"),
        "content-encoding": message.content_encoding,
        "content-type": message.content_type,
        "headers": message.headers,
        "properties": properties,
    }


def _read_written(path: Path) -> bytes | None:
    """The message file's bytes once its writer is done; None while it may still be writing.

    Our writers rename a whole file into place; kombu's filesystem transport writes the file in place
    under an exclusive lock, which a shared lock here waits for. What it cannot cover, the moment between
    kombu creating the file and locking it, shows as a file that is not JSON yet and was changed a moment
    ago: that one is left for the next look rather than dead-lettered.
    """
    with path.open("rb") as file:
        fcntl.flock(file, fcntl.LOCK_SH)
        data = file.read()
        age = time.time() - os.fstat(file.fileno()).st_mtime
    if age < SETTLING and not _is_json(data):
        return None
    return data


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except (ValueError, RecursionError):
        return False
    return True


def _delivery(data: bytes) -> Delivery:
    """A message file as a delivery; a file that is not kombu's envelope is kept as it is, with why."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return Delivery(data, problem="the message file is not JSON")
    if not isinstance(document, dict):
        return Delivery(data, problem="the message file is not kombu's envelope")
    properties = document.get("properties")
    headers = document.get("headers")
    problems = []
    if not isinstance(properties, dict):
        problems.append("the message properties are not an object")
        properties = {}
    if headers is not None and not isinstance(headers, dict):
        problems.append("the message headers are not an object")
        headers = None
    body = document.get("body")
    try:
        raw = (
            base64.b64decode(body or "", validate=True)
            if properties.get("body_encoding") == "base64"
            else as_bytes(body)
        )
    except (binascii.Error, ValueError, TypeError):
        problems.append("the body cannot be decoded")
        raw = as_bytes(body if isinstance(body, str | bytes) else "")
    kept = {name: properties[name] for name in PROPERTIES if name in properties}
    for key in ("content-type", "content-encoding"):
        if isinstance(document.get(key), str):
            kept[key.replace("-", "_")] = document[key]
    return Delivery(raw, kept, dict(headers or {}), problem="; ".join(problems) or None)


def _owner(path: Path) -> str | None:
    """The local user who wrote a message file (the system vouches for it), or None if it cannot say."""
    try:
        return pwd.getpwuid(path.stat().st_uid).pw_name
    except (OSError, KeyError):
        return None


def _put_back(taken: Iterable[Path], folder: Path) -> None:
    """Messages taken and not acknowledged: back to their queue under their own names (their place)."""
    for path in list(taken):
        with contextlib.suppress(FileNotFoundError):
            path.rename(folder / path.name)


def _recover_orphans(folder: Path) -> None:
    """The in-flight messages of connections whose owner is gone, back to their queues."""
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


def embedded_url(directory: Path | str = DEFAULT_FOLDER) -> str:
    return f"filesystem://{Path(directory).resolve()}"
