"""Reading a dead-letter queue: messages taken to be acknowledged (replayed) or given back (only looked at),
and each described as people read it (why, when, who sent it, the start of the body)."""

from __future__ import annotations

import time
from typing import Any

from f8a_jobs_worker.messaging.port import Delivery, Transport

#: a broker that cannot tell at once that a queue is empty (SQS) is given this long for the first message
WAIT_FOR_FIRST = 3.0


def take(
    transport: Transport, queue: str, limit: int, wait: float = WAIT_FOR_FIRST
) -> list[Delivery]:
    """Up to ``limit`` messages of ``queue``, to be acknowledged or given back."""
    transport.declare_queue(queue)
    taken: list[Delivery] = []
    while len(taken) < limit:
        delivery = transport.get(queue, wait=0.0 if taken else wait)
        if delivery is None:
            break
        taken.append(delivery)
    return taken


def peek(
    transport: Transport, queue: str, limit: int, wait: float = WAIT_FOR_FIRST
) -> list[Delivery]:
    """Up to ``limit`` messages of ``queue``, looked at and given back (nothing consumed)."""
    messages = take(transport, queue, limit, wait)
    transport.requeue(messages)
    return messages


def describe(message: Delivery) -> dict[str, Any]:
    headers = message.headers
    dead_at = headers.get("x-f8a-dead-at", 0)
    by = headers.get("x-f8a-principal")
    return {
        "reason": headers.get("x-f8a-reason"),
        "error": headers.get("x-f8a-error"),
        "dead_at": time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(dead_at if isinstance(dead_at, int | float) else 0)
        ),
        "by": by.get("principal") if isinstance(by, dict) else None,
        "body": message.body.decode("utf-8", errors="replace")[:200],
    }
