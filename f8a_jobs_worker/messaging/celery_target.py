"""The Celery broker as the flow relay writes to it: a kombu producer, which is what Celery's and Selinon's
publishing calls take, on a channel whose messages are confirmed together where the broker confirms them
(RabbitMQ). kombu is Celery's own messaging library: the task messages it writes are the ones Celery workers
read, whatever the broker.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from f8a_jobs_worker.errors import BrokerRefused, BrokerUnavailable
from f8a_jobs_worker.messaging.confirms import ConfirmedTags
from f8a_jobs_worker.retry import reason

if TYPE_CHECKING:
    from kombu import Connection

CONFIRM_TIMEOUT = 30.0


def kombu_connection(url: str, heartbeat: int = 0) -> Connection:
    """A kombu connection for a broker URL as the worker reads it (``sqs://`` to an emulator on a local
    host is plain HTTP; ``filesystem:///path`` is a folder). kombu comes with the flow backends' extras
    (``f8a-jobs-worker[celery]``, ``[selinon]``): the core does not need it."""
    from kombu import Connection

    parts = urlsplit(url)
    if parts.scheme == "filesystem":
        folder = str(Path(unquote(parts.path) or "f8a-jobs-broker"))
        folders = {"data_folder_in": folder, "data_folder_out": folder}
        return Connection("filesystem://", transport_options=folders)
    if parts.scheme == "sqs":
        region = parse_qs(parts.query).get("region", ["us-east-1"])[0]
        options: dict[str, Any] = {"region": region}
        if parts.hostname in {"127.0.0.1", "localhost", "::1"}:
            options["is_secure"] = False
        return Connection(url.split("?")[0], transport_options=options)
    return Connection(url, heartbeat=heartbeat)


class CeleryTarget:
    """One connection to the Celery broker; :meth:`sent` counts each message published through
    :attr:`producer`, :meth:`confirm` returns once the broker has all of them."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: Connection | None = None
        self.producer: Any = None
        self._channel: Any = None
        self._confirms = False
        self._tags = ConfirmedTags()

    @contextmanager
    def failures(self) -> Iterator[None]:
        """The Celery broker's failures (whatever kombu's transport raises) as BrokerUnavailable."""
        errors: tuple[type[BaseException], ...] = (OSError,)
        if self.conn is not None:
            errors += (*self.conn.connection_errors, *self.conn.channel_errors)
        try:
            yield
        except BrokerUnavailable:
            raise
        except errors as exc:
            raise BrokerUnavailable(f"the Celery broker: {reason(exc)}") from exc

    def connect(self) -> None:
        self.close()
        self.conn = kombu_connection(self.url)
        with self.failures():
            self.conn.ensure_connection(max_retries=0)
            self._channel = self.conn.channel()
            self._confirms = hasattr(self._channel, "confirm_select")
            if self._confirms:
                self._channel.confirm_select()
                self._tags.watch(self._channel)
            self.producer = self.conn.Producer(self._channel)
        self._tags.reset()

    def sent(self) -> None:
        """One more message published through the producer."""
        self._tags.sent()

    def confirm(self) -> None:
        """Return once the broker has every message published so far (a nack raises)."""
        if not self._confirms or self.conn is None:
            return
        with self.failures():
            while self._tags.unconfirmed > 0 and not self._tags.nacked:
                self.conn.drain_events(timeout=CONFIRM_TIMEOUT)
        if self._tags.nacked:
            raise BrokerRefused(f"the Celery broker refused delivery tag {self._tags.nacked[0]}")

    def close(self) -> None:
        conn, self.conn, self.producer, self._channel = self.conn, None, None, None
        if conn is not None:
            with contextlib.suppress(Exception):  # a connection that failed: nothing to save
                conn.release()
