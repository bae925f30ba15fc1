"""The transport port: what the worker, its client and its CLI need of a broker, and nothing else.

One adapter per broker implements :class:`Transport` (``rabbitmq.py``, ``sqs.py``, ``embedded.py``, and
``memory.py`` for unit tests); :func:`f8a_jobs_worker.messaging.connect.transport_for` picks it by the URL's
scheme. Everything that differs between brokers lives in its adapter: how a message is read without losing a
byte, how publishing is confirmed, what a private queue is, whether events reach every monitor or are taken
off one queue. What callers must know of the difference is the adapter's :class:`Facts`.

An adapter is one connection, used by one thread at a time. Any failure of the broker or of the connection
to it is :class:`~f8a_jobs_worker.errors.BrokerUnavailable`; after one, :meth:`Transport.close` and a new
:meth:`Transport.connect` start afresh (what was received and not acknowledged comes back).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

#: the properties a message may carry, beside its headers (AMQP's basic properties the contract uses)
PROPERTIES = ("reply_to", "correlation_id", "message_id", "content_type", "content_encoding")
JSON = "application/json"


@dataclass(frozen=True)
class Facts:
    """What differs between brokers, as callers need to know it."""

    #: commands that arrived together are applied in one transaction and their replies confirmed together
    batches: bool
    #: how long the consumer may hold a delivery while the job store is down, before it goes back
    max_hold: float
    #: how long a consumer's receive waits for messages before it looks whether it should stop (seconds):
    #: short where an idle wait costs nothing, whole seconds where each receive is a request (SQS)
    receive_wait: float = 0.25
    #: what vouches for a delivery's ``sender`` (a principal's ``source``): the broker's name, or "none"
    identity: str = "none"
    #: every subscriber of a topic gets each message (a private queue bound to it takes nothing from
    #: others); where not, a topic is one queue its readers compete for
    fanout: bool = False


@dataclass
class Delivery:
    """One message as it arrived: the body byte for byte, the properties and headers as far as they could
    be decoded, and why not (``problem``), with the undecodable bytes in ``raw_properties``."""

    body: bytes
    properties: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None
    raw_properties: bytes | None = None
    #: a ``correlation_id`` that is not UTF-8, as it arrived
    raw_correlation_id: bytes | None = None
    #: the adapter's handle to acknowledge or give back the message
    tag: Any = None
    #: who sent it, as the broker vouches (RabbitMQ's validated ``user_id``, SQS's ``SenderId``, the owner
    #: of an embedded message file); None where it does not say
    sender: str | None = None
    #: delivered before and given back (a copy seen again is not a replay of it)
    redelivered: bool = False

    def text(self, name: str) -> str | None:
        """A property that is a non-empty string, else None."""
        value = self.properties.get(name)
        return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class Outgoing:
    """A message to send: to a queue (``topic`` empty) or to a topic with its routing key."""

    body: bytes
    queue: str = ""
    topic: str = ""
    routing_key: str = ""
    correlation_id: str | None = None
    message_id: str | None = None
    reply_to: str | None = None
    headers: dict[str, Any] = field(default_factory=dict)
    content_type: str = JSON
    content_encoding: str = "utf-8"

    def __post_init__(self) -> None:
        if bool(self.queue) == bool(self.topic):
            raise ValueError("a message goes to a queue or to a topic")


class Transport(ABC):
    """A connection to one broker. Names are the contract's: letters, digits and ``_`` (SQS is the
    strictest); a reply queue a client names may also use ``-`` and ``.`` where the broker allows."""

    facts: ClassVar[Facts]

    @abstractmethod
    def __init__(self, url: str, heartbeat: int = 0) -> None:
        """For the broker ``url`` names; ``heartbeat``: seconds between heartbeats where the broker has
        them (0: none, for a connection that may sit idle between uses). Nothing is opened yet."""

    @abstractmethod
    def connect(self) -> None:
        """Open the connection (at once; it is not retried here)."""

    @abstractmethod
    def close(self) -> None:
        """Close it; what was received and not acknowledged goes back to its queue. Never raises."""

    # -- queues and topics -----------------------------------------------------------------------------------

    @abstractmethod
    def declare_queue(self, name: str) -> None:
        """A durable queue, reached by its own name."""

    @abstractmethod
    def subscribe(self, topic: str, queue: str, binding: str = "#") -> str:
        """A durable queue of a standing consumer that gets what is sent to ``topic`` (matching
        ``binding``), kept while the consumer is away; the name of the queue to read (on a broker without
        fan-out, the one queue of the topic)."""

    @abstractmethod
    def private_queue(self, name: str, topic: str = "", binding: str = "#") -> str:
        """A queue of this connection's own (replies, a watcher), bound to ``topic`` if given; its name.
        Where the broker cannot delete it with the connection, :meth:`release` does."""

    @abstractmethod
    def release(self, queue: str) -> None:
        """A private queue its owner is done with."""

    def reply_to_problem(self, name: str) -> str | None:
        """Why ``name`` cannot be a reply queue on this broker, or None."""
        return None

    # -- receiving -------------------------------------------------------------------------------------------

    @abstractmethod
    def consume(self, queue: str, prefetch: int) -> None:
        """Start taking messages from ``queue``, at most ``prefetch`` unacknowledged at a time."""

    @abstractmethod
    def receive(self, timeout: float, limit: int) -> list[Delivery]:
        """Wait up to ``timeout`` seconds for a message, then take what else has already arrived, never
        waiting for more; at most ``limit``. Empty when none came."""

    @abstractmethod
    def get(self, queue: str, wait: float = 0.0) -> Delivery | None:
        """One message off ``queue`` (to be acknowledged or given back), if there is one now; where the
        broker cannot tell at once that a queue is empty, up to ``wait`` seconds for one."""

    @abstractmethod
    def ack(self, deliveries: Iterable[Delivery]) -> None:
        """Done with these: they are gone from their queue."""

    @abstractmethod
    def requeue(self, deliveries: Iterable[Delivery]) -> None:
        """Give these back to their queue, for another try."""

    def heartbeat(self) -> None:  # noqa: B027 - most brokers have no heartbeats to keep
        """Keep the connection alive while holding deliveries without receiving."""

    # -- sending ---------------------------------------------------------------------------------------------

    @abstractmethod
    def send(self, messages: Iterable[Outgoing], window: int = 0) -> int:
        """Send ``messages`` in order and return how many, once the broker has all of them (confirmed,
        where the broker confirms). ``window``: at most that many unconfirmed at a time (0: no limit), for a
        stream too long to hold. A failure raises BrokerUnavailable with ``sent``, the number confirmed
        before it."""
