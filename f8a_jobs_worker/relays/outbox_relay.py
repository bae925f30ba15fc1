"""The outbox relay: the one writer of events to the broker (and of replies stored unsent, which only a release
before 0.1.0 wrote; the command consumer sends replies itself).

A thread of the worker. When its doorbell rings (after every commit that wrote outbox rows) and at least once
a second, it takes the rows not yet published in the order they were written (marked published and read in
one statement) and sends them (on RabbitMQ confirmed together) before the marks commit. A broker or store that
is down is retried with the worker's retry policy; nothing is lost meanwhile, the rows wait. A row sent whose
mark did not commit is sent again: monitors recognise the copy by its ``event_id`` (replies by their
``correlation_id``). Events also go to the worker's observers (a log, the tests' in-memory sink) once the
broker has them.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime

from f8a_jobs_worker import retry
from f8a_jobs_worker.errors import BrokerUnavailable
from f8a_jobs_worker.events.model import Event
from f8a_jobs_worker.events.sink import EventSink
from f8a_jobs_worker.lifecycle import Daemon, Doorbell
from f8a_jobs_worker.messaging.port import Outgoing, Transport
from f8a_jobs_worker.persistence.database import as_utc
from f8a_jobs_worker.persistence.outbox import OutboxRow
from f8a_jobs_worker.persistence.unit_of_work import Transactions

log = logging.getLogger(__name__)

BATCH = 500
POLL_INTERVAL = 1.0
#: a backlog this old is logged (every REMIND seconds while it lasts)
BACKLOG_WARNING_S = 10.0


class OutboxRelay(Daemon):
    def __init__(
        self,
        transactions: Transactions,
        transport: Transport | None,
        events_topic: str,
        observers: EventSink | None,
        bell: Doorbell,
    ) -> None:
        """``transport``: its own connection to the broker (None: no broker, observers only); ``bell``
        rings after every commit that wrote outbox rows."""
        # stop sends what is waiting (briefly); what is left is sent by the next start
        super().__init__("f8a-outbox", bell)
        self.transactions = transactions
        self.transport = transport
        self.events_topic = events_topic
        #: who else sees the events sent (the log without a broker, the tests' in-memory sink), if anyone
        self.observers = observers
        #: rows sent so far
        self.sent = 0
        self._connected = False
        self._outage = retry.Outage("outbox relay", log)
        self._warned = 0.0

    def _run(self) -> None:
        while not self._stopping.is_set():
            self.bell.wait(POLL_INTERVAL)
            retry.until_available(self.drain, Exception, self._outage, self._stopping)
        try:  # one last attempt for what the last moments wrote
            self.drain()
        except Exception as exc:
            log.warning(
                "outbox relay stopped with messages unsent (%s); the next start sends them",
                type(exc).__name__,
            )
        finally:
            if self.transport is not None:
                self.transport.close()

    def drain(self) -> None:
        """Send every row waiting, a batch at a time. A batch is marked and read (one statement) and sent
        in one transaction, held open while the broker confirms (a few milliseconds): a send that fails
        rolls the marks back with it, and each batch costs one transaction, not two."""
        while True:
            with self.transactions.begin() as uow:
                rows = uow.outbox.take(
                    uow.connection, BATCH, uow.now()
                )  # marked, until rolled back
                if not rows:
                    return
                self._send(rows)
                now = uow.now()
            self.sent += len(rows)
            self._report_backlog(rows[-1].created_at, now)
            if len(rows) < BATCH:
                return

    def _send(self, rows: list[OutboxRow]) -> None:
        if self.transport is not None:
            messages = [_message(row, self.events_topic) for row in rows]
            try:
                if not self._connected:
                    self.transport.connect()
                    self._connected = True
                self.transport.send(message for message in messages if message is not None)
            except BrokerUnavailable:
                self._connected = False  # a new connection for the next attempt
                self.transport.close()
                raise
        if self.observers is not None:
            events = [_event(row) for row in rows if row.kind == "event"]
            if events:
                self.observers.emit_many(events)

    def _report_backlog(self, newest_sent: datetime, now: datetime) -> None:
        """Log while the relay is far behind (a long outage, a flood of events)."""
        behind = (now - (as_utc(newest_sent) or now)).total_seconds()
        ticks = time.monotonic()
        if behind >= BACKLOG_WARNING_S and ticks - self._warned >= retry.REMIND_EVERY:
            self._warned = ticks
            log.warning("outbox relay is %.0fs behind; sending the backlog", behind)


def _message(row: OutboxRow, events_topic: str) -> Outgoing | None:
    """An event to the events exchange; a reply stored unsent to its reply queue (none without one)."""
    body = row.body.encode("utf-8")
    if row.kind == "event":
        return Outgoing(body, topic=events_topic, routing_key=row.name, message_id=row.message_id)
    if not row.reply_to:
        return None
    return Outgoing(
        body, queue=row.reply_to, message_id=row.message_id, correlation_id=row.correlation_id
    )


def _event(row: OutboxRow) -> Event:
    body = json.loads(row.body)
    fields = {k: v for k, v in body.items() if k not in {"event", "event_id", "at", "job_id"}}
    return Event(
        body["event"],
        body.get("job_id"),
        fields,
        datetime.fromisoformat(body["at"]),
        body["event_id"],
    )
