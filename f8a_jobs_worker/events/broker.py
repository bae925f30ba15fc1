"""The broker adapter of :class:`EventSink`: events on the ``f8a_jobs_events`` topic exchange.

On queue-only transports (SQS, embedded) events go to the queue of that name; the routing key is also the
``event`` field of the body, so monitors can filter either way. An event that cannot be published within the
publisher's retry policy raises; the worker's SafeEventSink logs it (the outbox will keep it instead).
"""

from __future__ import annotations

from f8a_jobs_worker.events.model import Event
from f8a_jobs_worker.ids import random_id
from f8a_jobs_worker.messaging.publisher import Publisher


class BrokerEventSink:
    def __init__(self, publisher: Publisher, exchange: str) -> None:
        self.publisher = publisher
        self.exchange = exchange

    def emit(self, event: Event) -> None:
        self.emit_many([event])

    def emit_many(self, events: list[Event]) -> None:
        """On RabbitMQ the events go out together and share one confirm wait."""
        self.publisher.to_topic_many(
            self.exchange,
            [(event.name, event.to_dict(), {"message_id": random_id()}) for event in events],
        )
