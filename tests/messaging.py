"""Test-side broker tools: an independent event watcher and a queue reader, on their own connections."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from typing import Any

from kombu import Connection, Consumer

from f8a_jobs_worker.messaging import broker
from f8a_jobs_worker.messaging.topology import durable_queue


def body_of(message: Any) -> bytes:
    return message.body if isinstance(message.body, bytes) else str(message.body).encode()


class EventWatcher:
    """A monitor that knows only the contract: binds to the events exchange (or reads the events queue)."""

    def __init__(self, url: str, events: str, binding: str = "#") -> None:
        self.conn: Connection = broker.connection(url)
        self.events: list[dict[str, Any]] = []
        channel = self.conn.default_channel
        self.queue = broker.topology(self.conn).events_queue(events, binding)(channel)
        self.queue.declare()
        self.consumer = Consumer(
            channel, queues=[self.queue], on_message=self._on_message, accept=None
        )
        self.consumer.consume()

    def _on_message(self, message: Any) -> None:
        message.ack()
        self.events.append(json.loads(body_of(message)))

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                self.conn.drain_events(timeout=min(remaining, 0.5))

    def named(self, name: str, job_id: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events
            if e["event"] == name and (job_id is None or e.get("job_id") == job_id)
        ]

    def wait_for(
        self, name: str, job_id: str | None = None, timeout: float = 20.0, count: int = 1
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.named(name, job_id)) < count and time.monotonic() < deadline:
            self.drain(0.2)
        found = self.named(name, job_id)
        assert len(found) >= count, (
            f"{name} for {job_id}: {len(found)} of {count}; saw {self.events}"
        )
        return found

    def close(self) -> None:
        self.conn.release()


def read_queue(
    url: str, name: str, count: int | None, timeout: float = 20.0, quiet: float | None = None
) -> list[Any]:
    """Take messages off a queue (acknowledging them): ``count`` of them, or with ``quiet`` every one
    until none came for that many seconds; at most ``timeout`` seconds either way."""
    with broker.connection(url) as conn:
        queue = durable_queue(name)(conn.default_channel)
        queue.declare()
        taken: list[Any] = []
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        while (count is None or len(taken) < count) and time.monotonic() < deadline:
            if quiet is not None and time.monotonic() - last >= quiet:
                break
            message = queue.get(no_ack=False)
            if message is None:
                time.sleep(0.1)
                continue
            message.ack()
            taken.append(message)
            last = time.monotonic()
        return taken


def publish_raw(url: str, queue: str, body: bytes, **properties: Any) -> None:
    """Publish bytes as they are, the way a careless or hostile publisher would."""
    with broker.connection(url) as conn:
        producer = conn.Producer()
        producer.publish(
            body,
            exchange="",
            routing_key=queue,
            declare=[durable_queue(queue)],
            content_type=properties.pop("content_type", "application/json"),
            content_encoding=properties.pop("content_encoding", "binary"),
            **properties,
        )


class ReplyCollector:
    """Every reply that arrives on a queue of its own, duplicates included."""

    def __init__(self, url: str) -> None:
        self.conn: Connection = broker.connection(url)
        self.name = f"replies_{uuid.uuid4().hex[:10]}"
        channel = self.conn.default_channel
        self.queue = broker.topology(self.conn).private_queue(self.name)(channel)
        self.queue.declare()
        self.replies: list[dict[str, Any]] = []
        #: the same replies by the correlation id they carry
        self.by_correlation: dict[str, list[dict[str, Any]]] = {}
        self.consumer = Consumer(
            channel, queues=[self.queue], on_message=self._on_message, accept=None
        )
        self.consumer.consume()

    def _on_message(self, message: Any) -> None:
        message.ack()
        reply = json.loads(body_of(message))
        self.replies.append(reply)
        correlation = (message.properties or {}).get("correlation_id") or reply["command_id"]
        self.by_correlation.setdefault(str(correlation), []).append(reply)

    def until(self, done: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done(self.replies) and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                self.conn.drain_events(timeout=0.5)

    def close(self) -> None:
        """Release the connection, and the queue where nothing else deletes it."""
        with contextlib.suppress(Exception):
            broker.topology(self.conn).release(self.queue)
        self.conn.release()
