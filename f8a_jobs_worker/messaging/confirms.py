"""Publisher confirms counted on one RabbitMQ channel: publish many messages without waiting, then wait once.

kombu's ``confirm_publish`` waits for the broker's ack after every message, a network round trip each. Here the
channel is put in confirm mode and acks are counted as they arrive (the broker may ack several at once), so a
caller can publish a batch (the replies of a batch of commands, the runs of a fan-out) and then wait until the
broker has taken all of them, or only until few enough are outstanding (a sliding window).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import amqp
from amqp import spec
from kombu import Connection

from f8a_jobs_worker.errors import BrokerRefused
from f8a_jobs_worker.messaging.amqp import corked

CONTENT_TYPE = "application/json"
CONFIRM_TIMEOUT = 30.0
#: the arguments of Basic.Publish (reserved, exchange, routing key, mandatory, immediate), as py-amqp sends them
PUBLISH_ARGUMENTS = "Bssbb"


class ConfirmedChannel:
    """A channel of ``conn`` in confirm mode; not thread-safe (one per thread or per task)."""

    def __init__(self, conn: Connection, timeout: float = CONFIRM_TIMEOUT) -> None:
        self.conn = conn
        self.timeout = timeout
        self.channel = conn.channel()
        self.published = 0
        self.confirmed = 0  # every tag up to this one is acknowledged
        self._acked: set[int] = set()
        self._nacked: list[int] = []
        self.declared: set[str] = set()  # exchanges its user declared on it already
        self.channel.confirm_select()
        self.channel.events["basic_ack"].add(self._on_ack)
        self.channel.events["basic_nack"].add(self._on_nack)
        # what any producer publishes on this channel (a kombu Producer, Celery's) goes out without kombu's
        # wait for its ack, and is counted: a connection with confirm_publish would wait per message
        self.channel.basic_publish = self._basic_publish

    def _basic_publish(self, *args: Any, **kwargs: Any) -> Any:
        self.published += 1
        return self.channel._basic_publish(*args, **kwargs)

    def _on_ack(self, tag: int, multiple: bool) -> None:
        if multiple:
            self.confirmed = max(self.confirmed, tag)
        else:
            self._acked.add(tag)
        while self.confirmed + 1 in self._acked:
            self.confirmed += 1
            self._acked.discard(self.confirmed)

    def _on_nack(self, tag: int, multiple: bool) -> None:
        self._nacked.append(tag)

    def publish(self, body: bytes, exchange: str, routing_key: str, **properties: Any) -> None:
        """Hand one persistent JSON message to the broker without waiting for its ack."""
        message = amqp.Message(
            body,
            content_type=CONTENT_TYPE,
            content_encoding="utf-8",
            delivery_mode=2,
            **properties,
        )
        # py-amqp's basic_publish first reads whatever the broker sent (a socket call per message, to see a
        # connection.blocked early); our connections log that notice whenever they read (messaging/amqp.py)
        self.published += 1
        self.channel.send_method(
            spec.Basic.Publish, PUBLISH_ARGUMENTS, (0, exchange, routing_key, False, False), message
        )

    @contextmanager
    def corked(self) -> Iterator[None]:
        """Publish (and acknowledge) a batch with one socket write (:func:`messaging.amqp.corked`)."""
        with corked(self.conn):
            yield

    @property
    def outstanding(self) -> int:
        return self.published - self.confirmed

    def wait(self, down_to: int = 0) -> None:
        """Read acks until at most ``down_to`` messages are unconfirmed; :class:`BrokerRefused` on a nack."""
        while self.outstanding > down_to and not self._nacked:
            self.conn.drain_events(timeout=self.timeout)
        if self._nacked:
            raise BrokerRefused(f"the broker refused delivery tag {self._nacked[0]}")

    def close(self) -> None:
        self.channel.close()
