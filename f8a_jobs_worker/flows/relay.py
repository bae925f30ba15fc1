"""The flow relay: neutral flow runs in, the flow engine's task messages out, at least once.

It consumes the durable queue ``<flows>_relay`` (bound to the flows exchange with ``#``; on queue-only brokers
the flows queue itself), hands each run to the backend, which publishes a Celery task message on the
pipeline's Celery broker, and acknowledges the runs of a batch only once that broker has confirmed all of
their task messages. A broker failure on either side ends the session without acknowledging: the runs come
back and are sent again with the same task id, so a duplicate is recognisable. A run that can never be sent
(an unknown flow, a message that is not a flow run) goes to ``<flows>_dead`` with the reason, never dropped.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from kombu import Connection, Consumer, Producer
from kombu.message import Message

from f8a_jobs_worker import retry
from f8a_jobs_worker.config import redact_url
from f8a_jobs_worker.errors import Undeliverable
from f8a_jobs_worker.flows.backend import FlowBackend, FlowRun
from f8a_jobs_worker.lifecycle import Daemon
from f8a_jobs_worker.messaging import broker
from f8a_jobs_worker.messaging.confirms import ConfirmedChannel
from f8a_jobs_worker.messaging.inbound import as_bytes, safe_headers, safe_text
from f8a_jobs_worker.messaging.publisher import NO_RETRY, Publisher
from f8a_jobs_worker.messaging.topology import Names

log = logging.getLogger(__name__)

PREFETCH = 500
GATHER_TIMEOUT = 0.05
RESTART_DELAY = 1.0


class _Target:
    """The Celery broker's side of a session: a producer whose publishes are counted and confirmed."""

    def __init__(self, conn: Connection) -> None:
        self.confirms = ConfirmedChannel(conn) if broker.topology(conn).confirmed_batches else None
        channel = self.confirms.channel if self.confirms is not None else conn.channel()
        self.producer = Producer(channel)

    def confirm(self) -> None:
        """Return once the broker has every message published so far (a nack raises)."""
        if self.confirms is not None:
            self.confirms.wait()


class FlowRelay(Daemon):
    """One consumer of flow runs; several (in several processes) may share the queue."""

    def __init__(
        self,
        source_url: str | None,
        target_url: str,
        names: Names,
        backend: FlowBackend,
        prefetch: int = PREFETCH,
    ) -> None:
        super().__init__("f8a-flow-relay", stop_timeout=30.0)
        self.source_url = source_url
        self.target_url = target_url
        self.names = names
        self.backend = backend
        self.prefetch = prefetch
        self.relayed = 0
        self.dead_lettered = 0
        self.sessions = 0  # connections to both brokers made so far (more than one: it reconnected)
        self._batch: list[Message] = []
        self._brokers = retry.Outage("flow relay's brokers", log)

    def _run(self) -> None:
        """Relay until stopped: a broker that does not answer is retried about once a second; anything
        else is logged and the session restarted (unacknowledged runs come back)."""
        errors = self._connection_errors()
        while not self._stopping.is_set():
            try:
                retry.until_available(self._session, errors, self._brokers, self._stopping)
            except Exception:
                log.exception("flow relay failed; restarting in %.0fs", RESTART_DELAY)
                self._stopping.wait(RESTART_DELAY)
            finally:
                self._batch.clear()

    def _connection_errors(self) -> tuple[type[BaseException], ...]:
        found: list[type[BaseException]] = [OSError]
        for url in (self.source_url, self.target_url):
            conn = broker.connection(url)
            found += [*conn.connection_errors, *conn.channel_errors]
            conn.release()
        return tuple(found)

    # -- one session ------------------------------------------------------------------------------------

    def _session(self) -> None:
        with (
            broker.connection(self.source_url) as source,
            broker.connection(self.target_url, heartbeat=0) as target,
            broker.connection(self.source_url, heartbeat=0) as dead_conn,
        ):
            source.ensure_connection(max_retries=0)
            target.ensure_connection(max_retries=0)
            sender = _Target(target)
            dead = Publisher(dead_conn, retry_policy=NO_RETRY)
            queue = broker.topology(source).subscription(self.names.flows, self.names.flows_relay)
            consumer = Consumer(
                source.default_channel,
                queues=[queue],
                on_message=self._batch.append,
                prefetch_count=self.prefetch,
                accept=None,
            )
            with consumer:
                self.sessions += 1
                self._brokers.recovered()
                log.info(
                    "relaying flow runs from %s to %s (%s)",
                    queue.name,
                    redact_url(self.target_url),
                    self.backend.name,
                )
                while not self._stopping.is_set():
                    self._gather(source)
                    if self._batch:
                        self._forward(self._batch, sender, dead)
                        self._batch.clear()

    def _gather(self, conn: Connection) -> None:
        """Wait up to a second for a run, then take what else arrives promptly, up to the prefetch."""
        try:
            conn.drain_events(timeout=1.0)
            while 0 < len(self._batch) < self.prefetch:
                conn.drain_events(timeout=GATHER_TIMEOUT)
        except TimeoutError:
            conn.heartbeat_check()

    def _forward(self, messages: list[Message], sender: _Target, dead: Publisher) -> None:
        """Send each run, wait for the Celery broker's confirms, then acknowledge the batch."""
        for message in messages:
            try:
                run = FlowRun.from_message(_decode(message))
                self.backend.send(run, sender.producer)  # counted by the confirm-mode channel
            except Undeliverable as exc:
                self._dead_letter(dead, message, exc)
        sender.confirm()
        for message in messages:
            message.ack()
        self.relayed += len(messages)

    def _dead_letter(self, dead: Publisher, message: Message, exc: Undeliverable) -> None:
        log.error("flow run dead-lettered to %s: %s", self.names.flows_dead, exc.message)
        headers = safe_headers(message.headers)
        headers.update(
            {
                "x-f8a-reason": exc.reason,
                "x-f8a-error": safe_text(exc.message, 1000),
                "x-f8a-dead-at": time.time(),
            }
        )
        dead.to_queue(self.names.flows_dead, as_bytes(message.body), headers=headers)
        self.dead_lettered += 1


def _decode(message: Message) -> Any:
    try:
        return json.loads(as_bytes(message.body).decode("utf-8"))
    except ValueError as exc:
        raise Undeliverable(f"not a JSON document: {exc}") from None
