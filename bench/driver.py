"""A request/reply load driver: keeps N messages in flight against a queue and times each round trip.

The same driver, the same connection settings and the same request bytes are used against the worker and
against the bare echo server, so the ratio between them is the cost of the worker itself.
"""

from __future__ import annotations

import gc
import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from kombu import Connection, Consumer, Producer, Queue

from bench.harness import RABBITMQ_URL, percentile


@contextmanager
def collection_paused() -> Iterator[None]:
    """The driver's own garbage collection paused while it times round trips, as ``timeit`` does: the
    benchmarks' process holds their large lists (run times, stored jobs), and its full collections took
    ~50 ms, added to whichever round trip was in flight."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass(frozen=True)
class RoundTrips:
    count: int
    seconds: float
    latencies_ms: list[float]
    replies: list[bytes]

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    @property
    def p50(self) -> float:
        return percentile(self.latencies_ms, 50)

    @property
    def p99(self) -> float:
        return percentile(self.latencies_ms, 99)


class Driver:
    """One connection, one exclusive reply queue; publishes without confirms (as a client would)."""

    def __init__(self, url: str = RABBITMQ_URL) -> None:
        self.conn = Connection(url)
        self.channel = self.conn.channel()
        self.reply_queue = Queue(
            f"bench_reply_{uuid.uuid4().hex[:8]}", exclusive=True, auto_delete=True, durable=False
        )(self.channel)
        self.reply_queue.declare()
        self.producer = Producer(self.channel)
        self._sent: dict[str, float] = {}
        self._declared: set[str] = set()
        self._done: list[tuple[float, bytes]] = []
        self.consumer = Consumer(
            self.channel, [self.reply_queue], on_message=self._on_reply, no_ack=True, accept=None
        )
        self.consumer.consume()

    def _on_reply(self, message: Any) -> None:
        correlation = message.properties.get("correlation_id")
        sent = self._sent.pop(correlation, None)
        if sent is not None:
            self._done.append(((time.perf_counter() - sent) * 1000, message.body))

    @collection_paused()
    def run(
        self,
        queue: str,
        bodies: Callable[[int], dict[str, Any]],
        count: int,
        in_flight: int,
        headers: dict[str, Any] | None = None,
        timeout: float = 300.0,
    ) -> RoundTrips:
        """Send ``count`` requests (``bodies(i)``), at most ``in_flight`` unanswered at any time."""
        if (
            queue not in self._declared
        ):  # a request sent before the consumer declared it would be dropped
            Queue(queue, routing_key=queue, durable=True)(self.channel).declare()
            self._declared.add(queue)
        self._done = []
        sent = 0
        started = time.perf_counter()
        deadline = started + timeout
        while len(self._done) < count:
            while sent < count and sent - len(self._done) < in_flight:
                body = bodies(sent)
                correlation = body["command_id"]
                self._sent[correlation] = time.perf_counter()
                self.producer.publish(
                    json.dumps(body).encode(),
                    routing_key=queue,
                    reply_to=self.reply_queue.name,
                    correlation_id=correlation,
                    message_id=correlation,
                    content_type="application/json",
                    content_encoding="utf-8",
                    delivery_mode=2,
                    headers=headers or {},
                )
                sent += 1
            try:
                self.conn.drain_events(timeout=1.0)
            except TimeoutError:
                if time.perf_counter() > deadline:
                    raise TimeoutError(
                        f"{len(self._done)} of {count} replies from {queue}"
                    ) from None
        seconds = time.perf_counter() - started
        return RoundTrips(
            count, seconds, [ms for ms, _ in self._done], [body for _, body in self._done]
        )

    def call(self, queue: str, body: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
        """One request and its decoded reply (setup steps)."""
        reply = self.run(queue, lambda _: body, 1, 1, timeout=timeout).replies[0]
        decoded: dict[str, Any] = json.loads(reply)
        return decoded

    def close(self) -> None:
        self.conn.release()


def command(name: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"command": name, "command_id": str(uuid.uuid4())}
    if args is not None:
        body["args"] = args
    return body


def wait_ready(driver: Driver, queue: str, timeout: float = 60.0) -> float:
    """Seconds until the worker on ``queue`` answers ``scheduler.state``."""
    started = time.perf_counter()
    reply = driver.call(queue, command("scheduler.state"), timeout=timeout)
    if not reply.get("ok"):
        raise RuntimeError(f"worker not ready: {reply}")
    return time.perf_counter() - started
