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

from kombu import Connection

from f8a_jobs_worker.errors import DispatchFailed
from f8a_jobs_worker.messaging import broker
from f8a_jobs_worker.messaging.confirms import ConfirmedChannel
from f8a_jobs_worker.messaging.publisher import Publisher, dumps
from f8a_jobs_worker.messaging.topology import topic_exchange

log = logging.getLogger(__name__)

BATCH = 500


class FlowDispatcher:
    """Publishes flow runs to the flows exchange (or queue); one dispatcher per process, one fan-out at a
    time per connection it opens."""

    def __init__(
        self,
        broker_url: str | None,
        exchange: str,
        batch: int = BATCH,
        subscribers: tuple[str, ...] = (),
    ) -> None:
        self.broker_url = broker_url
        self.exchange = exchange
        self.batch = batch
        #: durable queues (the flow relay's) declared and bound before a fan-out, so that no run is
        #: published before its reader's queue exists
        self.subscribers = subscribers

    def dispatch(self, runs: Iterable[tuple[str, dict[str, Any]]]) -> int:
        """Publish every ``(flow_name, body)``; return how many were confirmed, or raise DispatchFailed."""
        conn = broker.connection(self.broker_url, heartbeat=0)
        try:
            with _broker_errors(lambda: 0):
                topology = broker.topology(conn)
                for queue in self.subscribers:
                    topology.subscription(self.exchange, queue)(conn.default_channel).declare()
            if topology.confirmed_batches:
                return self._confirmed_batches(conn, runs)
            return self._one_by_one(conn, runs)
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
        with _broker_errors(lambda: 0):
            conn.ensure_connection(max_retries=3)
            confirms = ConfirmedChannel(conn)
            topic_exchange(self.exchange)(confirms.channel).declare()
        # An error of the runs themselves (a bad $filter) is the caller's; only the broker's are wrapped.
        for flow_name, body in runs:
            try:  # not _broker_errors(): a context manager per message cost a seventh of the fan-out
                confirms.publish(dumps(body), self.exchange, flow_name)
                if confirms.outstanding >= self.batch:  # a sliding window: the pipe never runs dry
                    confirms.wait(down_to=self.batch // 2)
            except Exception as exc:
                raise _failed(confirms.confirmed, exc) from exc
        with _broker_errors(lambda: confirms.confirmed):
            confirms.wait()
        return confirms.confirmed


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
    return DispatchFailed(
        f"{dispatched} flow runs were dispatched and confirmed before the broker failed: "
        f"{type(exc).__name__}: {exc}",
        dispatched,
    )
