"""The names of the wire contract, the kombu entities behind them, and where brokers differ in them.

On RabbitMQ events and flow runs go to topic exchanges; on queue-only transports to queues of the same name.
Every name uses letters, digits and ``_`` only, so the same names are valid SQS queue names. What differs is a
:class:`Topology`, one per kind of broker, that each adapter's transport names (``Transport.topology``):
callers ask it instead of asking which broker this is.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

from kombu import Exchange, Queue

_NAME = re.compile(r"^[A-Za-z0-9_]{1,80}$")


def valid_name(name: str) -> bool:
    """A queue or exchange name every transport accepts (SQS is the strictest)."""
    return bool(_NAME.match(name))


@dataclass(frozen=True)
class Names:
    commands: str = "f8a_jobs_commands"
    dead: str = "f8a_jobs_commands_dead"
    events: str = "f8a_jobs_events"
    flows: str = "f8a_jobs_flows"

    def __post_init__(self) -> None:
        for name in (self.commands, self.dead, self.events, self.flows):
            if not _NAME.match(name):
                raise ValueError(f"queue name {name!r}: use letters, digits and _ only (max 80)")

    @classmethod
    def with_prefix(cls, prefix: str) -> Names:
        """All four names under another prefix, e.g. for a second deployment on one broker."""
        return cls(
            f"{prefix}_commands", f"{prefix}_commands_dead", f"{prefix}_events", f"{prefix}_flows"
        )

    @property
    def flows_relay(self) -> str:
        """The durable queue the flow relay reads flow runs from (bound to the flows exchange)."""
        return f"{self.flows}_relay"

    @property
    def flows_dead(self) -> str:
        """Flow runs the relay could not hand to the flow engine, with the reason."""
        return f"{self.flows}_dead"


def durable_queue(name: str) -> Queue:
    """A durable queue reached through the default exchange by its own name."""
    return Queue(name, routing_key=name, durable=True, auto_delete=False)


def topic_exchange(name: str) -> Exchange:
    return Exchange(name, type="topic", durable=True)


class Topology:
    """Where messages go on one kind of broker: the adapters' part of the transport port."""

    #: events and flow runs are routed by topic exchanges (else each exchange is a queue of its name)
    exchanges: ClassVar[bool]
    #: several commands are applied in one transaction and their replies confirmed together; flow runs go
    #: out with a window of publisher confirms (else each publish returns once the broker has it)
    confirmed_batches: ClassVar[bool]
    #: a ``basic.get`` on an empty queue says so at once and for sure (else messages may still show up)
    empty_get_is_final: ClassVar[bool]

    def private_queue(
        self, name: str, exchange: Exchange | None = None, routing_key: str | None = None
    ) -> Queue:
        """A queue of one consumer's own (replies, a watcher)."""
        raise NotImplementedError

    def events_queue(self, events: str, binding: str = "#") -> Queue:
        """Where a monitor reads events."""
        raise NotImplementedError

    def subscription(self, exchange: str, queue: str) -> Queue:
        """A durable queue of a standing consumer (the flow relay) that gets everything sent to
        ``exchange``, kept while that consumer is away."""
        raise NotImplementedError

    def release(self, queue: Any) -> None:
        """A private queue its owner is done with."""


class ExchangeTopology(Topology):
    """RabbitMQ: topic exchanges, exclusive auto-deleted private queues, publisher confirms."""

    exchanges = True
    confirmed_batches = True
    empty_get_is_final = True

    def private_queue(
        self, name: str, exchange: Exchange | None = None, routing_key: str | None = None
    ) -> Queue:
        """Exclusive and auto-deleted: the broker drops it with its consumer."""
        return Queue(
            name,
            exchange,
            routing_key=routing_key or name,
            exclusive=True,
            auto_delete=True,
            durable=False,
        )

    def events_queue(self, events: str, binding: str = "#") -> Queue:
        """A private queue bound to the events exchange with ``binding``: every monitor sees every event."""
        return self.private_queue(
            f"{events}_watch_{uuid.uuid4().hex[:8]}", topic_exchange(events), binding
        )

    def subscription(self, exchange: str, queue: str) -> Queue:
        """``queue``, durable, bound to the topic exchange with ``#``."""
        return Queue(
            queue, topic_exchange(exchange), routing_key="#", durable=True, auto_delete=False
        )


class QueueTopology(Topology):
    """SQS and the embedded broker: queues only, each polled."""

    exchanges = False
    confirmed_batches = False
    empty_get_is_final = False

    def private_queue(
        self, name: str, exchange: Exchange | None = None, routing_key: str | None = None
    ) -> Queue:
        """A durable queue (there are no exclusive ones), deleted by its owner (:meth:`release`)."""
        return durable_queue(name)

    def events_queue(self, events: str, binding: str = "#") -> Queue:
        """The one shared events queue: readers take events off it."""
        return durable_queue(events)

    def subscription(self, exchange: str, queue: str) -> Queue:
        """The queue named like the exchange itself: its one reader takes the messages off it."""
        return durable_queue(exchange)

    def release(self, queue: Any) -> None:
        queue.delete()
