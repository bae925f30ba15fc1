"""An in-memory broker for unit tests: queues, topic exchanges that copy each message to every bound queue,
acknowledgements and redelivery, all inside one process. Never the only proof of a behaviour: the same tests
run against RabbitMQ, SQS and the embedded broker (tests/test_transports.py).

``memory://<name>``: connections to one name share one :class:`MemoryBroker` (:func:`broker_named`), as
connections to one RabbitMQ share its queues.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from f8a_jobs_worker.errors import BrokerUnavailable
from f8a_jobs_worker.messaging.port import Delivery, Facts, Outgoing, Transport


@dataclass
class _Queue:
    messages: deque[Delivery] = field(default_factory=deque)
    owner: MemoryTransport | None = None  # an exclusive queue's connection


class MemoryBroker:
    """Queues and bindings; what the connections to it share (and a lock for them)."""

    def __init__(self) -> None:
        self.queues: dict[str, _Queue] = {}
        self.bindings: list[tuple[str, str, re.Pattern[str]]] = []  # (topic, queue, binding)
        self.changed = threading.Condition()
        #: set to make every operation fail as a broker outage would
        self.down = False

    def queue(self, name: str) -> _Queue:
        return self.queues.setdefault(name, _Queue())

    def route(self, message: Outgoing) -> list[str]:
        if not message.topic:
            return [message.queue]
        return [
            q
            for t, q, b in self.bindings
            if t == message.topic and b.fullmatch(message.routing_key)
        ]


_BROKERS: dict[str, MemoryBroker] = {}
_BROKERS_LOCK = threading.Lock()


def broker_named(name: str) -> MemoryBroker:
    """The broker of ``memory://<name>`` in this process."""
    with _BROKERS_LOCK:
        return _BROKERS.setdefault(name, MemoryBroker())


def topic_pattern(binding: str) -> re.Pattern[str]:
    """AMQP topic matching: ``*`` is one word, ``#`` zero or more."""
    parts = [
        r"[^.]+" if w == "*" else r".*" if w == "#" else re.escape(w) for w in binding.split(".")
    ]
    regex = r"\.".join(parts).replace(r".*\.", r"(?:.*\.)?").replace(r"\..*", r"(?:\..*)?")
    return re.compile(regex)


class MemoryTransport(Transport):
    facts = Facts(batches=True, max_hold=300.0, identity="memory", fanout=True)

    def __init__(self, url: str = "memory://", heartbeat: int = 0) -> None:
        user, _, name = urlsplit(url).netloc.rpartition("@")
        self.broker = broker_named(name or "unnamed")
        #: who this connection's messages come from (``memory://alice@name``), as a broker would vouch
        self.user = user or None
        self._connected = False
        self._consuming: str | None = None
        self._prefetch = 1
        self._taken: dict[int, tuple[str, Delivery]] = {}
        self._next_tag = 0

    def _check(self) -> None:
        if self.broker.down or not self._connected:
            raise BrokerUnavailable(
                "the memory broker is down" if self.broker.down else "not connected"
            )

    def connect(self) -> None:
        if self.broker.down:
            raise BrokerUnavailable("the memory broker is down")
        self._connected = True

    def close(self) -> None:
        with self.broker.changed:
            self._give_back(list(self._taken))
            for name, queue in list(self.broker.queues.items()):
                if queue.owner is self:
                    del self.broker.queues[name]
            self.broker.changed.notify_all()
        self._connected = False

    def declare_queue(self, name: str) -> None:
        self._check()
        with self.broker.changed:
            self.broker.queue(name)

    def subscribe(self, topic: str, queue: str, binding: str = "#") -> str:
        self.declare_queue(queue)
        with self.broker.changed:
            self.broker.bindings.append((topic, queue, topic_pattern(binding)))
        return queue

    def private_queue(self, name: str, topic: str = "", binding: str = "#") -> str:
        self._check()
        with self.broker.changed:
            self.broker.queue(name).owner = self
            if topic:
                self.broker.bindings.append((topic, name, topic_pattern(binding)))
        return name

    def release(self, queue: str) -> None:
        """Nothing to do: a private queue goes with its connection."""

    def consume(self, queue: str, prefetch: int) -> None:
        self.declare_queue(queue)
        self._consuming, self._prefetch = queue, prefetch

    def receive(self, timeout: float, limit: int) -> list[Delivery]:
        self._check()
        queue = self._consuming
        if queue is None:
            raise BrokerUnavailable("nothing consumed")
        with self.broker.changed:
            room = min(limit, self._prefetch - len(self._taken))
            self.broker.changed.wait_for(lambda: bool(self.broker.queue(queue).messages), timeout)
            return [self._deliver(queue) for _ in range(room) if self.broker.queue(queue).messages]

    def get(self, queue: str, wait: float = 0.0) -> Delivery | None:
        self._check()
        with self.broker.changed:
            return self._deliver(queue) if self.broker.queue(queue).messages else None

    def _deliver(self, queue: str) -> Delivery:
        delivery = self.broker.queue(queue).messages.popleft()
        self._next_tag += 1
        taken = replace(delivery, tag=self._next_tag)
        self._taken[self._next_tag] = (queue, taken)
        return taken

    def ack(self, deliveries: Iterable[Delivery]) -> None:
        self._check()
        for delivery in deliveries:
            self._taken.pop(delivery.tag, None)

    def requeue(self, deliveries: Iterable[Delivery]) -> None:
        self._check()
        with self.broker.changed:
            self._give_back([d.tag for d in deliveries])
            self.broker.changed.notify_all()

    def _give_back(self, tags: list[int]) -> None:
        for tag in tags:
            found = self._taken.pop(tag, None)
            if found is not None:
                queue, delivery = found
                self.broker.queue(queue).messages.appendleft(
                    replace(delivery, tag=None, redelivered=True)
                )

    def send(self, messages: Iterable[Outgoing], window: int = 0) -> int:
        sent = 0
        with self.broker.changed:
            for message in messages:
                if self.broker.down:
                    raise BrokerUnavailable("the memory broker is down", sent)
                properties = {
                    "correlation_id": message.correlation_id,
                    "message_id": message.message_id,
                    "reply_to": message.reply_to,
                    "content_type": message.content_type,
                    "content_encoding": message.content_encoding,
                }
                delivery = Delivery(
                    message.body,
                    {k: v for k, v in properties.items() if isinstance(v, str)},
                    dict(message.headers),
                    sender=self.user,
                )
                for queue in self.broker.route(message):
                    self.broker.queue(queue).messages.append(delivery)
                sent += 1
            self.broker.changed.notify_all()
        return sent
