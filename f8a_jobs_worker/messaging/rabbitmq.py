"""The RabbitMQ adapter, on py-amqp: topic exchanges, exclusive reply queues, publisher confirms per batch.

Every message is received as it arrived: the frames are read by :mod:`.amqp_frames`, so properties py-amqp
could not decode are kept raw with the reason instead of failing the connection, and the body stays bytes.
Publishing goes on a channel of its own in confirm mode: a batch (a batch of commands' replies, a batch of
events, a fan-out of flow runs within a sliding window) is written to the socket at once and its acks waited
for once; a nack is :class:`~f8a_jobs_worker.errors.BrokerRefused`.
"""

from __future__ import annotations

import contextlib
import logging
import select
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import amqp

from f8a_jobs_worker.errors import BrokerRefused, BrokerUnavailable
from f8a_jobs_worker.messaging.amqp_frames import Cork, Frames
from f8a_jobs_worker.messaging.confirms import ConfirmedTags
from f8a_jobs_worker.messaging.port import Delivery, Facts, Outgoing, Transport
from f8a_jobs_worker.messaging.publish_frames import encode_properties, publish_frames
from f8a_jobs_worker.retry import reason

log = logging.getLogger(__name__)

#: for the rest of a frame whose start is already readable
GATHER_TIMEOUT = 0.1
CONFIRM_TIMEOUT = 30.0
CONNECT_TIMEOUT = 10.0
#: what py-amqp and the socket raise when the broker or the connection fails
FAILURES = (amqp.exceptions.AMQPError, OSError, EOFError, ConnectionError)


class RabbitMQ(Transport):
    #: RabbitMQ closes a channel that holds a delivery longer than its consumer_timeout (30 min by default)
    facts = Facts(batches=True, max_hold=300.0, identity="rabbitmq", fanout=True)

    def __init__(self, url: str, heartbeat: int = 30) -> None:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        self.ssl = parts.scheme == "amqps"
        self.host = f"{parts.hostname or '127.0.0.1'}:{parts.port or (5671 if self.ssl else 5672)}"
        self.userid = unquote(parts.username or "guest")
        self.password = unquote(parts.password or "guest")
        self.virtual_host = unquote(parts.path[1:]) or "/"
        self.heartbeat_seconds = int(query["heartbeat"][0]) if "heartbeat" in query else heartbeat
        self._conn: amqp.Connection | None = None
        self._channel: Any = None
        self._confirms: Any = None
        self._frames = Frames()
        self._cork = Cork()
        self._buffer: list[Delivery] = []
        self._declared: set[str] = set()
        self._tags = ConfirmedTags()

    @contextmanager
    def _failures(self, since: int | None = None) -> Iterator[None]:
        """py-amqp's failures as BrokerUnavailable; ``since``: the messages published from there on and
        confirmed before the failure count as sent."""
        try:
            yield
        except BrokerUnavailable:
            raise
        except FAILURES as exc:
            sent = 0 if since is None else max(self._tags.confirmed - since, 0)
            raise BrokerUnavailable(f"RabbitMQ: {reason(exc)}", sent) from exc

    # -- the connection ---------------------------------------------------------------------------------------

    def connect(self) -> None:
        self.close()
        conn = amqp.Connection(
            self.host,
            userid=self.userid,
            password=self.password,
            virtual_host=self.virtual_host,
            heartbeat=self.heartbeat_seconds,
            ssl=self.ssl,
            connect_timeout=CONNECT_TIMEOUT,
            frame_handler=self._frames.handler,
            frame_writer=self._cork.writer,
            on_blocked=_blocked,
            on_unblocked=_unblocked,
        )
        with self._failures():
            conn.connect()
            self._conn, self._channel = conn, conn.channel()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        self._channel = self._confirms = None
        self._buffer.clear()
        self._declared.clear()
        if conn is not None:
            with contextlib.suppress(Exception):  # a connection that failed: nothing to save
                conn.close()

    def _live(self) -> tuple[amqp.Connection, Any]:
        if self._conn is None or self._channel is None:
            raise BrokerUnavailable("RabbitMQ: not connected")
        return self._conn, self._channel

    # -- queues and topics -----------------------------------------------------------------------------------

    def declare_queue(self, name: str) -> None:
        if name in self._declared or name.startswith("amq."):
            return
        _, channel = self._live()
        with self._failures():
            channel.queue_declare(name, durable=True, auto_delete=False)
        self._declared.add(name)

    def _declare_topic(self, name: str) -> None:
        key = f"exchange:{name}"
        if key not in self._declared:
            _, channel = self._live()
            with self._failures():
                channel.exchange_declare(name, "topic", durable=True, auto_delete=False)
            self._declared.add(key)

    def subscribe(self, topic: str, queue: str, binding: str = "#") -> str:
        self._declare_topic(topic)
        self.declare_queue(queue)
        _, channel = self._live()
        with self._failures():
            channel.queue_bind(queue, topic, binding)
        return queue

    def private_queue(self, name: str, topic: str = "", binding: str = "#") -> str:
        """Exclusive and auto-deleted: the broker drops it with the connection."""
        _, channel = self._live()
        with self._failures():
            channel.queue_declare(name, durable=False, exclusive=True, auto_delete=True)
        if topic:
            self._declare_topic(topic)
            with self._failures():
                channel.queue_bind(name, topic, binding)
        return name

    def release(self, queue: str) -> None:
        """Nothing to do: an exclusive queue goes with its connection."""

    def reply_to_problem(self, name: str) -> str | None:
        """A routing key is an AMQP short string: at most 255 bytes."""
        return None if len(name.encode("utf-8")) <= 255 else "longer than 255 bytes"

    # -- receiving -------------------------------------------------------------------------------------------

    def consume(self, queue: str, prefetch: int) -> None:
        _, channel = self._live()
        with self._failures():
            channel.basic_qos(0, prefetch, False)
            channel.basic_consume(queue, callback=self._arrived, no_ack=False)

    def _arrived(self, message: amqp.Message) -> None:
        self._buffer.append(self._delivery(message))

    def _delivery(self, message: amqp.Message) -> Delivery:
        found = self._frames.take(message.channel.channel_id)
        values = found.values
        headers = values.pop("application_headers", None)
        body = message.body
        return Delivery(
            body=body if isinstance(body, bytes) else bytes(body or b""),
            properties=values,
            headers=headers if isinstance(headers, dict) else {},
            problem=found.problem,
            raw_properties=found.raw,
            raw_correlation_id=found.raw_correlation_id,
            tag=message.delivery_info["delivery_tag"],
            sender=values.get("user_id") if isinstance(values.get("user_id"), str) else None,
            redelivered=bool(message.delivery_info.get("redelivered")),
        )

    def receive(self, timeout: float, limit: int) -> list[Delivery]:
        conn, _ = self._live()
        with self._failures():
            try:
                if not self._buffer:
                    conn.drain_events(timeout=timeout)
                while 0 < len(self._buffer) < limit and self._readable(conn):
                    conn.drain_events(timeout=GATHER_TIMEOUT)
            except TimeoutError:
                conn.heartbeat_tick()
        taken, self._buffer = self._buffer[:limit], self._buffer[limit:]
        return taken

    @staticmethod
    def _readable(conn: amqp.Connection) -> bool:
        """Whether the socket has bytes waiting (so reading them will not block)."""
        sock = conn.sock
        return sock is not None and bool(select.select([sock], [], [], 0)[0])

    def get(self, queue: str, wait: float = 0.0) -> Delivery | None:
        """``basic.get``: an empty queue says so at once and for sure (no wait)."""
        _, channel = self._live()
        with self._failures():
            message = channel.basic_get(queue, no_ack=False)
        return None if message is None else self._delivery(message)

    def ack(self, deliveries: Iterable[Delivery]) -> None:
        _, channel = self._live()
        with self._failures(), self._cork.corked():
            for delivery in deliveries:
                channel.basic_ack(delivery.tag)

    def requeue(self, deliveries: Iterable[Delivery]) -> None:
        _, channel = self._live()
        with self._failures():
            for delivery in deliveries:
                channel.basic_reject(delivery.tag, requeue=True)

    def heartbeat(self) -> None:
        conn, _ = self._live()
        with self._failures():
            conn.heartbeat_tick()

    # -- sending ---------------------------------------------------------------------------------------------

    def send(self, messages: Iterable[Outgoing], window: int = 0) -> int:
        channel = self._confirm_channel()
        first = self._tags.published
        sent = 0
        with self._failures(first), self._cork.corked():
            for message in messages:
                if message.topic and f"exchange:{message.topic}" not in self._declared:
                    with self._cork.released():  # a declaration waits for its answer
                        self._declare_topic(message.topic)
                self._publish(channel, message)
                sent += 1
                if window and self._tags.unconfirmed >= window:
                    with self._cork.released():
                        self._wait(first, down_to=window // 2)
        self._wait(first)
        return sent

    def _publish(self, channel: Any, message: Outgoing) -> None:
        properties: dict[str, Any] = {
            "content_type": message.content_type,
            "content_encoding": message.content_encoding,
            "delivery_mode": 2,
            # the broker checks it is this connection's user: the principal of what we send
            "user_id": self.userid,
        }
        if message.correlation_id is not None:
            properties["correlation_id"] = message.correlation_id
        if message.message_id is not None:
            properties["message_id"] = message.message_id
        if message.reply_to is not None:
            properties["reply_to"] = message.reply_to
        if message.headers:
            properties["application_headers"] = message.headers
        exchange = message.topic
        key = message.routing_key if exchange else message.queue
        conn = channel.connection
        if conn is None:  # what py-amqp's own publish says of a closed channel
            raise amqp.exceptions.RecoverableConnectionError("channel already closed")
        frames = publish_frames(
            channel.channel_id,
            exchange,
            key or "",
            encode_properties(properties),
            message.body,
            conn.frame_max,
        )
        self._tags.sent()
        # written whole (py-amqp's basic_publish would first read whatever the broker sent, a socket call per
        # message, to see a connection.blocked early; the connection logs that notice whenever it reads)
        self._cork.write(frames)
        conn.bytes_sent += 1  # what py-amqp's heartbeats count as traffic sent

    def _confirm_channel(self) -> Any:
        conn, _ = self._live()
        if self._confirms is None:
            with self._failures():
                channel = conn.channel()
                channel.confirm_select()
            self._tags.watch(channel)
            self._confirms = channel
        return self._confirms

    def _wait(self, first: int, down_to: int = 0) -> None:
        """Read acks until at most ``down_to`` messages are unconfirmed (those published since ``first``
        count as sent once confirmed)."""
        conn, _ = self._live()
        while self._tags.unconfirmed > down_to and not self._tags.nacked:
            with self._failures(first):
                try:
                    conn.drain_events(timeout=CONFIRM_TIMEOUT)
                except TimeoutError:
                    raise BrokerUnavailable(
                        f"RabbitMQ confirmed no message for {CONFIRM_TIMEOUT:.0f}s",
                        max(self._tags.confirmed - first, 0),
                    ) from None
        if self._tags.nacked:
            refused = self._tags.nacked[0]
            self._tags.nacked.clear()
            raise BrokerRefused(
                f"RabbitMQ refused the message of delivery tag {refused}",
                max(min(self._tags.confirmed, refused - 1) - first, 0),
            )


def _blocked(why: str) -> None:
    log.warning("RabbitMQ blocks publishing on a connection of this worker: %s", why)


def _unblocked() -> None:
    log.warning("RabbitMQ no longer blocks publishing on a connection of this worker")
