"""The raw limit of a command round trip: a bare kombu consumer that answers every message.

It consumes like the worker does (durable queue, manual acks, the same prefetch), publishes a reply of the size
the request asks for (header ``x-bench-reply-bytes``, the size of the worker's own reply) to ``reply_to`` with
the ``correlation_id``, then acknowledges. No validation, no database, no publisher confirms, no events.

    python -m bench.echo AMQP_URL QUEUE PREFETCH
"""

from __future__ import annotations

import signal
import sys
from typing import Any

from kombu import Connection, Consumer, Producer, Queue


def main(url: str, queue_name: str, prefetch: int) -> None:
    stop = False

    def _stop(*_: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    with Connection(url) as conn:
        channel = conn.channel()
        queue = Queue(queue_name, routing_key=queue_name, durable=True)(channel)
        queue.declare()
        producer = Producer(conn.channel())

        def on_message(message: Any) -> None:
            size = int(message.headers.get("x-bench-reply-bytes", len(message.body)))
            producer.publish(
                b"x" * size,
                routing_key=message.properties["reply_to"],
                correlation_id=message.properties.get("correlation_id"),
                content_type="application/json",
                content_encoding="utf-8",
                delivery_mode=2,
            )
            message.ack()

        consumer = Consumer(channel, [queue], on_message=on_message, accept=None)
        consumer.qos(prefetch_count=prefetch)
        consumer.consume()
        print("echo ready", flush=True)
        while not stop:
            try:
                conn.drain_events(timeout=0.5)
            except TimeoutError:
                continue


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
