"""The flow relay: neutral flow runs in, the flow engine's task messages out, at least once.

It reads the durable queue ``<flows>_relay`` (bound to the flows exchange with ``#``; on a broker without
fan-out, the flows queue itself), hands each run to the backend, which publishes a Celery task message on the
pipeline's Celery broker, and acknowledges the runs of a batch only once that broker has confirmed all of
their task messages. A broker failure on either side ends the session without acknowledging: the runs come
back and are sent again with the same task id, so a duplicate is recognisable. A run that can never be sent
(an unknown flow, a message that is not a flow run) goes to ``<flows>_dead`` with the reason, never dropped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from f8a_jobs_worker import retry
from f8a_jobs_worker.clock import SYSTEM, Clock
from f8a_jobs_worker.config import Settings
from f8a_jobs_worker.errors import BrokerUnavailable, Undeliverable
from f8a_jobs_worker.flows.backend import FlowBackend, FlowRun
from f8a_jobs_worker.lifecycle import Daemon
from f8a_jobs_worker.messaging.celery_target import CeleryTarget
from f8a_jobs_worker.messaging.connect import transport_for
from f8a_jobs_worker.messaging.inbound import safe_headers, safe_text
from f8a_jobs_worker.messaging.names import Names
from f8a_jobs_worker.messaging.port import Delivery, Outgoing, Transport

log = logging.getLogger(__name__)

PREFETCH = 500
RESTART_DELAY = 1.0


def relay_for(
    settings: Settings,
    backend: FlowBackend,
    source: Transport | None = None,
    clock: Clock = SYSTEM,
) -> FlowRelay:
    """The flow relay between the settings' brokers (``source``: a connection to the worker's broker)."""
    return FlowRelay(
        source or transport_for(settings.broker_url),
        CeleryTarget(settings.effective_celery_broker_url or ""),
        settings.names(),
        backend,
        clock.now,
        settings.flow_relay_prefetch,
    )


class FlowRelay(Daemon):
    """One consumer of flow runs; several (in several processes) may share the queue."""

    def __init__(
        self,
        source: Transport,
        target: CeleryTarget,
        names: Names,
        backend: FlowBackend,
        now: Callable[[], datetime],
        prefetch: int = PREFETCH,
    ) -> None:
        """``source``: a connection to the worker's broker; ``target``: one to the Celery broker."""
        super().__init__("f8a-flow-relay", stop_timeout=30.0)
        self.source = source
        self.target = target
        self.names = names
        self.backend = backend
        self.now = now
        self.prefetch = prefetch
        self.relayed = 0
        self.dead_lettered = 0
        self.sessions = 0  # connections to both brokers made so far (more than one: it reconnected)
        self._brokers = retry.Outage("flow relay's brokers", log)

    def counters(self) -> dict[str, tuple[str, float]]:
        """What it has done so far, as the metrics show it (name: help, value)."""
        return {
            "f8a_jobs_flow_runs_relayed": (
                "Flow runs this replica's relay handed to the Celery broker (confirmed).",
                self.relayed,
            ),
            "f8a_jobs_flow_runs_dead_lettered": (
                "Flow runs this replica's relay could not send (dead-lettered).",
                self.dead_lettered,
            ),
        }

    def _run(self) -> None:
        """Relay until stopped: a broker that does not answer is retried about once a second; anything
        else is logged and the session restarted (unacknowledged runs come back)."""
        while not self._stopping.is_set():
            try:
                retry.until_available(
                    self._session, BrokerUnavailable, self._brokers, self._stopping
                )
            except Exception:
                log.exception("flow relay failed; restarting in %.0fs", RESTART_DELAY)
                self._stopping.wait(RESTART_DELAY)
            finally:
                self.source.close()
                self.target.close()

    def _session(self) -> None:
        source = self.source
        source.connect()
        self.target.connect()
        queue = source.subscribe(self.names.flows, self.names.flows_relay)
        source.declare_queue(self.names.flows_dead)
        source.consume(queue, self.prefetch)
        self.sessions += 1
        self._brokers.recovered()
        log.info("relaying flow runs from %s to the Celery broker (%s)", queue, self.backend.name)
        while not self._stopping.is_set():
            batch = source.receive(source.facts.receive_wait, self.prefetch)
            if batch:
                self._forward(batch)

    def _forward(self, deliveries: list[Delivery]) -> None:
        """Send each run, wait for the Celery broker's confirms, then acknowledge the batch."""
        dead = []
        with self.target.failures():
            for delivery in deliveries:
                try:
                    run = FlowRun.from_message(_decode(delivery.body))
                    self.backend.send(run, self.target.producer)
                    self.target.sent()
                except Undeliverable as exc:
                    dead.append(self._dead_letter(delivery, exc))
        self.source.send(dead)
        self.target.confirm()
        self.source.ack(deliveries)
        self.relayed += len(deliveries)

    def _dead_letter(self, delivery: Delivery, exc: Undeliverable) -> Outgoing:
        log.error("flow run dead-lettered to %s: %s", self.names.flows_dead, exc.message)
        self.dead_lettered += 1
        headers: dict[str, Any] = safe_headers(delivery.headers)
        headers.update(
            {
                "x-f8a-reason": exc.reason,
                "x-f8a-error": safe_text(exc.message, 1000),
                "x-f8a-dead-at": self.now().timestamp(),
            }
        )
        return Outgoing(delivery.body, queue=self.names.flows_dead, headers=headers)


def _decode(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except ValueError as exc:
        raise Undeliverable(f"not a JSON document: {exc}") from None
