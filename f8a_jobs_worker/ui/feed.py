"""The live feed: one subscription to the events exchange per dashboard process, shared by every open tab.

On RabbitMQ a queue of the dashboard's own is bound to the events exchange, so monitors lose nothing; where
the transport has no fan-out (SQS, the embedded broker) the dashboard subscribes to nothing and the pages
poll instead, so it never takes events away from monitors.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

from f8a_jobs_worker.errors import BrokerUnavailable
from f8a_jobs_worker.messaging.port import Transport

log = logging.getLogger(__name__)

#: events kept for a tab that opens the live tail
KEPT = 200


class EventFeed:
    """Reads events in a thread; hands each to the asyncio queues of the open tabs."""

    def __init__(self, make_transport: Callable[[], Transport], events: str) -> None:
        self._make = make_transport
        self.events = events
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=KEPT)
        self._tabs: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[dict[str, Any]]]] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="f8a-ui-events", daemon=True)
        self.connected = False

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        """A queue of the events that arrive from now on, for one tab (in the running event loop)."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)
        with self._lock:
            self._tabs.add((asyncio.get_running_loop(), queue))
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        with self._lock:
            self._tabs = {tab for tab in self._tabs if tab[1] is not queue}

    def _run(self) -> None:
        while not self._stop.is_set():
            transport = self._make()
            try:
                transport.connect()
                queue = transport.private_queue(f"f8a_jobs_ui_{uuid.uuid4().hex}", self.events)
                transport.consume(queue, 200)
                self.connected = True
                while not self._stop.is_set():
                    deliveries = transport.receive(0.5, 200)
                    transport.ack(deliveries)
                    for delivery in deliveries:
                        self._arrived(delivery.body)
            except BrokerUnavailable as exc:
                log.warning("live events: the broker is unavailable (%s); retrying", exc)
                self._stop.wait(1.0)
            finally:
                self.connected = False
                transport.close()

    def _arrived(self, body: bytes) -> None:
        try:
            event = json.loads(body)
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        self.recent.appendleft(event)
        with self._lock:
            tabs = list(self._tabs)
        for loop, queue in tabs:
            loop.call_soon_threadsafe(_offer, queue, event)


def _offer(queue: asyncio.Queue[dict[str, Any]], event: dict[str, Any]) -> None:
    """A tab that does not keep up misses events (it re-reads its page on the next)."""
    if not queue.full():
        queue.put_nowait(event)
