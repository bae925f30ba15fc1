"""Publishing JSON to the contract's destinations, thread-safe, with retries and (on RabbitMQ) confirms.

Replies, events and flow runs are JSON documents that any client reads with a JSON parser alone. On RabbitMQ
and the embedded broker kombu sends them as they are; an adapter whose kombu transport would wrap them (SQS)
provides a ``plain_sender`` that sends them itself. Commands, dead letters and replays, which carry arbitrary
headers, always go through kombu.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from typing import Any

from kombu import Connection, Exchange, Producer, Queue

from f8a_jobs_worker.group_commit import GroupCommit
from f8a_jobs_worker.messaging.broker import topology
from f8a_jobs_worker.messaging.confirms import CONTENT_TYPE, ConfirmedChannel
from f8a_jobs_worker.messaging.topology import durable_queue, topic_exchange

log = logging.getLogger(__name__)

DEFAULT_RETRY = {"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 2.0}
#: for a caller that retries with a policy of its own (the outbox relay)
NO_RETRY = {"max_retries": 0}


# one encoder for the process: json.dumps() with options builds a new one per call
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def dumps(body: Any) -> bytes:
    return _ENCODER.encode(body).encode("utf-8")


def encode_reply(reply: dict[str, Any]) -> bytes:
    """A reply as UTF-8 JSON; a reply that cannot be encoded (text that is not valid Unicode) is replaced
    by an ``internal_error`` reply that can, so that a client always gets an answer."""
    try:
        return dumps(reply)
    except (UnicodeEncodeError, TypeError, ValueError) as exc:
        fallback = {
            "command_id": _ascii(reply.get("command_id")),
            "command": _ascii(reply.get("command")) if reply.get("command") is not None else None,
            "ok": False,
            "error": {
                "code": "internal_error",
                "message": f"the reply could not be encoded ({type(exc).__name__})",
                "details": [],
            },
        }
        return dumps(fallback)


def _ascii(value: Any) -> str:
    return str(value).encode("ascii", "backslashreplace").decode("ascii")


class Publisher:
    """One connection and producer shared by the threads of a process; one publish at a time.

    ``publish`` returns once the broker has the message (publisher confirms on RabbitMQ) or raises after
    ``retry_policy`` is exhausted: callers decide whether that loses anything.
    """

    def __init__(self, conn: Connection, retry_policy: dict[str, Any] | None = None) -> None:
        self.conn = conn
        self.retry_policy = retry_policy or DEFAULT_RETRY
        self.topology = topology(conn)
        self._lock = threading.Lock()
        self._declared: set[str] = set()
        self._producer: Producer | None = None
        # topic messages (events) from many threads share their confirm waits: see _publish_topics
        self._topics: GroupCommit[tuple[str, str, bytes, dict[str, Any]], None] = GroupCommit(
            self._publish_topics
        )
        self._confirms: ConfirmedChannel | None = None
        #: the adapter's own sender of JSON documents, if kombu's transport would wrap them (made on first use)
        self._plain_cls: Any = getattr(conn.transport, "plain_sender", None)
        self._plain: Any = None

    def to_queue(self, queue: str, body: bytes | Any, **properties: Any) -> None:
        """Publish to a queue by name (replies, dead letters), declaring it durable the first time."""
        declare: list[Exchange | Queue] = [] if queue.startswith("amq.") else [durable_queue(queue)]
        self._publish(body, exchange="", routing_key=queue, declare=declare, **properties)

    def to_reply_queue(self, queue: str, body: Any, **properties: Any) -> None:
        """Publish to a client's reply queue, which the client declared (it may be exclusive)."""
        if self._plain_cls is not None:
            self._send_plain(
                [(queue, "", body if isinstance(body, bytes) else dumps(body), properties)]
            )
            return
        self._publish(body, exchange="", routing_key=queue, declare=[], **properties)

    def to_topic(self, exchange: str, routing_key: str, body: Any, **properties: Any) -> None:
        """Publish to a topic exchange, or to the queue of that name on queue-only transports.

        On RabbitMQ, messages published at the same time by several threads (the runner threads' events) go
        out together on a confirm-mode channel and share one wait for the broker's acks; each call still
        returns only once the broker has confirmed its own message.
        """
        self.to_topic_many(exchange, [(routing_key, body, properties)])

    def to_topic_many(self, exchange: str, messages: list[tuple[str, Any, dict[str, Any]]]) -> None:
        """:meth:`to_topic` for several ``(routing_key, body, properties)``, in order, confirmed together."""
        self.send_many(
            [
                (exchange, routing_key, body if isinstance(body, bytes) else dumps(body), props)
                for routing_key, body, props in messages
            ]
        )

    def send_many(self, messages: list[tuple[str, str, bytes, dict[str, Any]]]) -> None:
        """``(exchange, routing_key, body, properties)`` in order, confirmed together on RabbitMQ. The
        exchange ``""`` sends straight to the queue named by the routing key (a client's reply queue); on
        queue-only transports an exchange is the queue of that name."""
        if self._plain_cls is not None:
            self._send_plain(
                [
                    (exchange or routing_key, routing_key if exchange else "", body, properties)
                    for exchange, routing_key, body, properties in messages
                ]
            )
            return
        if not self.topology.exchanges:
            for exchange, routing_key, body, properties in messages:
                if exchange:
                    self.to_queue(exchange, body, **properties)
                else:
                    self.to_reply_queue(routing_key, body, **properties)
            return
        self._topics.submit_many(messages)

    def _send_plain(self, messages: list[tuple[str, str, bytes, dict[str, Any]]]) -> None:
        """``(queue, routing_key, body, properties)`` through the adapter's plain sender."""
        with self._lock:
            if self._plain is None:
                self._plain = self._plain_cls(self.conn)
            self._plain.send_many(messages)

    def _publish_topics(self, batch: list[tuple[str, str, bytes, dict[str, Any]]]) -> list[None]:
        with self._lock:
            publish = self.conn.ensure(self, self._publish_confirmed, **self.retry_policy)
            publish(batch)
        return [None] * len(batch)

    def _publish_confirmed(self, batch: list[tuple[str, str, bytes, dict[str, Any]]]) -> None:
        if self._confirms is None:
            self._confirms = ConfirmedChannel(self.conn)
        confirms = self._confirms
        for exchange in {exchange for exchange, _, _, _ in batch} - confirms.declared:
            if exchange:  # declared before the batch: a declaration waits for its answer
                topic_exchange(exchange)(confirms.channel).declare()
                confirms.declared.add(exchange)
        with confirms.corked():
            for exchange, routing_key, payload, properties in batch:
                confirms.publish(payload, exchange, routing_key, **properties)
        confirms.wait()

    def revive(self, _channel: Any) -> None:
        """Called by kombu's ``ensure`` after a reconnect: the confirm channel is opened anew on next use
        (not on the channel kombu hands in, the default one, whose acks the producer waits for)."""
        self._confirms = None

    def _publish(
        self,
        body: bytes | Any,
        exchange: Exchange | str,
        routing_key: str,
        declare: list[Exchange | Queue],
        **properties: Any,
    ) -> None:
        payload = body if isinstance(body, bytes) else dumps(body)
        properties.setdefault("content_type", CONTENT_TYPE)
        properties.setdefault("content_encoding", "utf-8")
        with self._lock:
            fresh = [entity for entity in declare if self._key(entity) not in self._declared]
            if self._producer is None:  # kept: publish(retry=True) revives it after a reconnect
                self._producer = self.conn.Producer()
            self._producer.publish(
                payload,
                exchange=exchange,
                routing_key=routing_key,
                declare=fresh,
                retry=True,
                retry_policy=self.retry_policy,
                delivery_mode=2,
                **properties,
            )
            self._declared.update(self._key(entity) for entity in fresh)

    @staticmethod
    def _key(entity: Exchange | Queue) -> str:
        return f"{type(entity).__name__}:{entity.name}"

    def reset(self) -> None:
        """Drop the connection after a failure: the next publish opens a new one. For a caller that retries
        on its own (with :data:`NO_RETRY` kombu would not reconnect by itself)."""
        with self._lock:
            self._confirms = None
            self._producer = None
            self._plain = None
            self._declared.clear()
            with contextlib.suppress(Exception):  # best effort: the connection is broken already
                self.conn.collect()

    def close(self) -> None:
        with self._lock:
            self.conn.release()
