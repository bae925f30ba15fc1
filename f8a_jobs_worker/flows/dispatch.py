"""Publishing flow runs: one message per run on ``f8a_jobs_flows``, routing key = flow name.

On RabbitMQ the dispatcher publishes on a channel in confirm mode with a window of unconfirmed messages: when
``batch`` are outstanding it reads acks until half of them are confirmed, so publishing never waits for a full
round trip per message or per batch, and the end of a fan-out still knows that every message was taken.
Elsewhere (SQS, embedded) each publish returns once the broker has the message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import amqp
from kombu import Connection

from f8a_jobs_worker.messaging import broker
from f8a_jobs_worker.messaging.publisher import CONTENT_TYPE, Publisher, dumps
from f8a_jobs_worker.messaging.topology import topic_exchange

log = logging.getLogger(__name__)

BATCH = 500
CONFIRM_TIMEOUT = 30.0


class DispatchFailed(Exception):
    """The broker failed during a fan-out; ``dispatched`` runs were confirmed before it did."""

    def __init__(self, dispatched: int, reason: str) -> None:
        super().__init__(
            f"{dispatched} flow runs were dispatched and confirmed before the broker failed: "
            f"{reason}"
        )
        self.dispatched = dispatched


class FlowDispatcher:
    """Publishes flow runs to the flows exchange (or queue); one dispatcher per process, one fan-out at a
    time per connection it opens."""

    def __init__(self, broker_url: str | None, exchange: str, batch: int = BATCH) -> None:
        self.broker_url = broker_url
        self.exchange = exchange
        self.batch = batch

    def dispatch(self, runs: Iterable[tuple[str, dict[str, Any]]]) -> int:
        """Publish every ``(flow_name, body)``; return how many were confirmed, or raise DispatchFailed."""
        conn = broker.connection(self.broker_url, heartbeat=0)
        try:
            if broker.queue_only(conn):
                return self._one_by_one(conn, runs)
            return self._confirmed_batches(conn, runs)
        finally:
            conn.release()

    def _one_by_one(self, conn: Connection, runs: Iterable[tuple[str, dict[str, Any]]]) -> int:
        publisher = Publisher(conn)
        confirmed = 0  # each publish returns once the broker has the message
        # An error of the runs themselves (a bad $filter) is the caller's; only the broker's are wrapped.
        for flow_name, body in runs:
            with _broker_errors(lambda: confirmed):  # noqa: B023 - called within this iteration
                publisher.to_topic(self.exchange, flow_name, body)
            confirmed += 1
        return confirmed

    def _confirmed_batches(
        self, conn: Connection, runs: Iterable[tuple[str, dict[str, Any]]]
    ) -> int:
        published = confirmed = 0
        acked: set[int] = set()
        nacked: list[int] = []

        def on_ack(tag: int, multiple: bool) -> None:
            nonlocal confirmed
            if multiple:
                confirmed = max(confirmed, tag)
            else:
                acked.add(tag)
            while confirmed + 1 in acked:
                confirmed += 1
                acked.discard(confirmed)

        def on_nack(tag: int, multiple: bool) -> None:
            nacked.append(tag)

        def wait_for_confirms(down_to: int = 0) -> None:
            """Until at most ``down_to`` published messages are unconfirmed (or one was refused)."""
            while published - confirmed > down_to and not nacked:
                conn.drain_events(timeout=CONFIRM_TIMEOUT)
            if nacked:
                raise DispatchFailed(confirmed, f"the broker refused delivery tag {nacked[0]}")

        with _broker_errors(lambda: confirmed):
            conn.ensure_connection(max_retries=3)
            channel = conn.channel()
            topic_exchange(self.exchange)(channel).declare()
            channel.confirm_select()
            channel.events["basic_ack"].add(on_ack)
            channel.events["basic_nack"].add(on_nack)
        # An error of the runs themselves (a bad $filter) is the caller's; only the broker's are wrapped.
        for flow_name, body in runs:
            message = amqp.Message(
                dumps(body), content_type=CONTENT_TYPE, content_encoding="utf-8", delivery_mode=2
            )
            try:  # not _broker_errors(): a context manager per message cost a seventh of the fan-out
                channel._basic_publish(message, exchange=self.exchange, routing_key=flow_name)
                published += 1
                if published - confirmed >= self.batch:  # a sliding window: the pipe never runs dry
                    wait_for_confirms(down_to=self.batch // 2)
            except Exception as exc:
                raise _failed(confirmed, exc) from exc
        with _broker_errors(lambda: confirmed):
            wait_for_confirms()
        return confirmed


@contextmanager
def _broker_errors(dispatched: Callable[[], int]) -> Iterator[None]:
    """Turn a broker error into DispatchFailed with the number of runs confirmed so far."""
    try:
        yield
    except Exception as exc:
        raise _failed(dispatched(), exc) from exc


def _failed(dispatched: int, exc: Exception) -> DispatchFailed:
    if isinstance(exc, DispatchFailed):
        return exc
    return DispatchFailed(dispatched, f"{type(exc).__name__}: {exc}")
