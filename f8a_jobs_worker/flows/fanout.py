"""Publishing flow runs: one message per run to the flows exchange, routing key = flow name.

A fan-out goes out on a connection of its own: on RabbitMQ with a sliding window of publisher confirms (when
``window`` are unconfirmed, acks are read until half of them are), so publishing never waits for a round trip
per message or per batch, the memory it holds stays bounded however many runs a query yields, and the end of
a fan-out still knows that every run was taken. Elsewhere each run is taken by the broker as it is sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from f8a_jobs_worker.errors import BrokerUnavailable, DispatchFailed
from f8a_jobs_worker.messaging.codec import dumps
from f8a_jobs_worker.messaging.port import Outgoing, Transport

log = logging.getLogger(__name__)

#: unconfirmed flow runs at most: RabbitMQ confirms persistent messages once its batched fsync is done, so the
#: window must cover that interval at full rate (measured: 500 -> 18,500/s, 2,000 -> 20,800, 5,000 -> 23,800
#: flat beyond it, RSS +5 MiB; bench/fanout.py)
WINDOW = 5000


class FlowDispatcher:
    """Publishes flow runs to the flows exchange (or queue): one fan-out per connection it opens."""

    def __init__(
        self,
        transports: Callable[[], Transport],
        topic: str,
        window: int = WINDOW,
        subscribers: tuple[str, ...] = (),
    ) -> None:
        """``transports`` makes a connection to the broker (not connected yet); ``subscribers``: durable
        queues (the flow relay's) bound before a fan-out, so that no run is published before its reader's
        queue exists."""
        self.transports = transports
        self.topic = topic
        self.window = window
        self.subscribers = subscribers

    def dispatch(self, runs: Iterable[tuple[str, dict[str, Any]]]) -> int:
        """Publish every ``(flow_name, body)``; return how many were confirmed, or raise DispatchFailed.
        An error of the runs themselves (a bad ``$filter``) is raised as it is."""
        transport = self.transports()
        messages = (
            Outgoing(dumps(body), topic=self.topic, routing_key=flow_name)
            for flow_name, body in runs
        )
        try:
            transport.connect()
            for queue in self.subscribers:
                transport.subscribe(self.topic, queue)
            return transport.send(messages, window=self.window)
        except BrokerUnavailable as exc:
            raise DispatchFailed(
                f"{exc.sent} flow runs were dispatched and confirmed before the broker failed: "
                f"{exc.message}",
                exc.sent,
            ) from exc
        finally:
            transport.close()
